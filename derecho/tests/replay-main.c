/* Replays fuzz corpora through LLVMFuzzerTestOneInput (built with gcc when
 * not fuzzing): every file of every directory given on the command line. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int files = 0;
    uint8_t *buf = malloc(1 << 20);
    if (!buf)
        return 1;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            free(buf);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                closedir(d);
                free(buf);
                return 1;
            }
            size_t n = fread(buf, 1, 1 << 20, f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, n);
            files++;
        }
        closedir(d);
    }
    free(buf);
    fprintf(stderr, "replay: %d inputs\n", files);
    return files > 0 ? 0 : 1;
}
