/* The registry: the persistent fields of one replicated object. */
#include "persistent-private.h"

#include <errno.h>
#include <stdlib.h>

struct field {
    struct persistent_log *log;
    struct persistent_field_ops ops;
    void *ctx;
    /* The version this field is known durable through: a registry persist
     * through v makes every entry <= v durable, and a field without an
     * entry in between did not change, so it counts as durable through v. */
    _Atomic int64_t through;
};

struct persistent_registry {
    struct field *fields;
    size_t num_fields;
    _Atomic int64_t latest; /* last version made */
    bool made;              /* a version was made: no more fields */
    uint8_t *buf;
    size_t buf_cap;
    /* Truncate lowers the fields' `through`; a persist pass that began
     * before it must not raise them again above the cut.  truncate bumps
     * cuts under lock; persist raises `through` under lock only when cuts
     * did not change since its pass began. */
    pthread_mutex_t lock;
    uint64_t cuts;
};

int persistent_registry_create(struct persistent_registry **out)
{
    if (!out)
        return -EINVAL;
    struct persistent_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return -ENOMEM;
    atomic_store(&reg->latest, PERSISTENT_INVALID_VERSION);
    pthread_mutex_init(&reg->lock, NULL);
    *out = reg;
    return 0;
}

void persistent_registry_destroy(struct persistent_registry *reg)
{
    if (!reg)
        return;
    pthread_mutex_destroy(&reg->lock);
    free(reg->fields);
    free(reg->buf);
    free(reg);
}

int persistent_registry_add(struct persistent_registry *reg,
                            struct persistent_log *log,
                            const struct persistent_field_ops *ops, void *ctx)
{
    if (!reg || !log || !ops || !ops->changed || !ops->serialize || reg->made)
        return -EINVAL;
    for (size_t i = 0; i < reg->num_fields; i++) {
        if (reg->fields[i].log == log)
            return -EINVAL;
    }
    struct field *f =
        realloc(reg->fields, (reg->num_fields + 1) * sizeof(*reg->fields));
    if (!f)
        return -ENOMEM;
    reg->fields = f;
    struct field *nf = &f[reg->num_fields];
    nf->log = log;
    nf->ops = *ops;
    nf->ctx = ctx;
    atomic_store(&nf->through, persistent_log_latest_persisted(log));
    reg->num_fields++;
    int64_t last = persistent_log_last_version(log);
    if (last > atomic_load(&reg->latest))
        atomic_store(&reg->latest, last);
    return 0;
}

/* Calls the field's serialize into the registry's buffer, growing it as
 * asked.  The callback is not trusted: a size beyond the buffer with
 * success, a positive return or a request for more than the log could
 * ever hold are refused before anything reads the buffer. */
static int serialize(struct persistent_registry *reg, struct field *f,
                     size_t *size)
{
    uint64_t most = f->log->opts.max_data_size < PERSISTENT__MAX_ENTRY
                        ? f->log->opts.max_data_size
                        : PERSISTENT__MAX_ENTRY;
    for (int attempt = 0; attempt < 4; attempt++) {
        *size = 0;
        int e = f->ops.serialize(f->ctx, reg->buf, reg->buf_cap, size);
        if (e == 0 && *size > reg->buf_cap)
            return -EINVAL; /* claims more bytes than it could write */
        if (e > 0)
            return -EINVAL; /* not a negative errno */
        if (e != -ENOBUFS)
            return e;
        if (*size <= reg->buf_cap)
            return -EINVAL; /* asked for more but needs no more */
        if (*size > most)
            return -ENOSPC; /* the append would fail the same way */
        uint8_t *nb = realloc(reg->buf, *size);
        if (!nb)
            return -ENOMEM;
        reg->buf = nb;
        reg->buf_cap = *size;
    }
    return -EINVAL;
}

int persistent_registry_make_version(struct persistent_registry *reg, int64_t v,
                                     int64_t ts)
{
    if (!reg || v < 0 || v <= atomic_load(&reg->latest))
        return -EINVAL;
    reg->made = true;
    size_t done = 0;
    int64_t *prev = NULL;
    int e = 0;
    for (size_t i = 0; i < reg->num_fields; i++) {
        struct field *f = &reg->fields[i];
        if (!f->ops.changed(f->ctx))
            continue;
        size_t size = 0;
        e = serialize(reg, f, &size);
        if (!e) {
            int64_t before = persistent_log_last_version(f->log);
            e = persistent_log_append(f->log, v, ts, reg->buf, size);
            if (!e) {
                /* Remember what to undo should a later field fail. */
                int64_t *np = realloc(prev, (done + 1) * 2 * sizeof(*np));
                if (np) {
                    prev = np;
                    prev[2 * done] = (int64_t)i;
                    prev[2 * done + 1] = before;
                    done++;
                } else {
                    persistent_log_truncate(f->log, before);
                    e = -ENOMEM;
                }
            }
        }
        if (e)
            break;
    }
    if (e) {
        for (size_t k = 0; k < done; k++)
            persistent_log_truncate(reg->fields[prev[2 * k]].log,
                                    prev[2 * k + 1]);
    } else {
        atomic_store(&reg->latest, v);
    }
    free(prev);
    return e;
}

int persistent_registry_persist(struct persistent_registry *reg, int64_t v)
{
    if (!reg)
        return -EINVAL;
    pthread_mutex_lock(&reg->lock);
    uint64_t cuts = reg->cuts;
    int64_t latest = atomic_load(&reg->latest);
    pthread_mutex_unlock(&reg->lock);
    if (v > latest)
        v = latest;
    if (v < 0)
        return 0;
    int first_err = 0;
    for (size_t i = 0; i < reg->num_fields; i++) {
        struct field *f = &reg->fields[i];
        int e = persistent_log_persist(f->log, v);
        if (e) {
            if (!first_err)
                first_err = e;
            continue;
        }
        /* A truncate since the pass began may have cut below v (and a
         * new version v may not be durable): claim nothing then. */
        pthread_mutex_lock(&reg->lock);
        if (reg->cuts == cuts && atomic_load(&f->through) < v)
            atomic_store(&f->through, v);
        pthread_mutex_unlock(&reg->lock);
    }
    return first_err;
}

int persistent_registry_truncate(struct persistent_registry *reg, int64_t v)
{
    if (!reg)
        return -EINVAL;
    int first_err = 0;
    /* Lowered before the logs are cut, so no frontier read in between
     * counts a version about to be cut; persist passes already running
     * see cuts changed and raise nothing. */
    pthread_mutex_lock(&reg->lock);
    reg->cuts++;
    for (size_t i = 0; i < reg->num_fields; i++) {
        struct field *f = &reg->fields[i];
        if (atomic_load(&f->through) > v)
            atomic_store(&f->through, v < 0 ? PERSISTENT_INVALID_VERSION : v);
    }
    if (atomic_load(&reg->latest) > v)
        atomic_store(&reg->latest, v < 0 ? PERSISTENT_INVALID_VERSION : v);
    pthread_mutex_unlock(&reg->lock);
    for (size_t i = 0; i < reg->num_fields; i++) {
        int e = persistent_log_truncate(reg->fields[i].log, v);
        if (e && !first_err)
            first_err = e;
    }
    return first_err;
}

int64_t persistent_registry_frontier(const struct persistent_registry *reg)
{
    if (!reg || reg->num_fields == 0)
        return PERSISTENT_INVALID_VERSION;
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < reg->num_fields; i++) {
        struct field *f = &reg->fields[i];
        int64_t t = atomic_load(&f->through);
        int64_t p = persistent_log_latest_persisted(f->log);
        if (p > t)
            t = p;
        if (t < min)
            min = t;
    }
    return min;
}

int64_t
persistent_registry_latest_version(const struct persistent_registry *reg)
{
    return reg ? atomic_load(&((struct persistent_registry *)reg)->latest)
               : PERSISTENT_INVALID_VERSION;
}
