/* What every vs_stress member started by a test shares (test-smc.c's
 * run_vs_signal, test-vs-faults.c's vs_start_at). */
#include "test-derecho.h"

#include <stdio.h>
#include <time.h>

void td_vs_member_args(struct td_vs_args *s, int id, const uint16_t *port,
                       const char *ip, const char *contact_ip,
                       const char **argv, int *k)
{
    snprintf(s->a[0], sizeof(s->a[0]), "--DERECHO/local_id=%d", id);
    snprintf(s->a[1], sizeof(s->a[1]), "--DERECHO/gms_port=%u", port[2 * id]);
    snprintf(s->a[2], sizeof(s->a[2]), "--DERECHO/sst_port=%u",
             port[2 * id + 1]);
    snprintf(s->a[3], sizeof(s->a[3]), "--DERECHO/contact_port=%u", port[0]);
    snprintf(s->a[4], sizeof(s->a[4]), "--DERECHO/local_ip=%s", ip);
    snprintf(s->a[5], sizeof(s->a[5]), "--DERECHO/contact_ip=%s", contact_ip);
    for (int i = 0; i < 6; i++)
        argv[(*k)++] = s->a[i];
    argv[(*k)++] = "--DERECHO/sst_poll_cq_timeout_ms=" TD_SUSPECT_MS;
}

void td_vs_spacing(void)
{
    struct timespec ts = {0, 300000000}; /* the 0.3 s */
    nanosleep(&ts, NULL);
}
