/* job_record.h - one job's record: spec, state, times, its event log in memory and
 * what the events say (progress, epoch history, best value per policy,
 * checkpoint files), rendered as the API's JSON and as Keras CSVLogger text.
 *
 * Locking: `mu` guards every field marked (mu).  `file_mu` serialises
 * appends to events.ndjson (held without mu, so readers never wait on an
 * fsync).  `stop` is atomic.  The registry fields belong to job_registry.c. */
#ifndef TRAIND_JOB_RECORD_H
#define TRAIND_JOB_RECORD_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "fsutil.h"
#include "job_id.h"
#include "job_spec.h"
#include "logs.h"
#include "template.h"

#define JOB_RECENT_PROGRESS 32   /* progress events kept in memory (not persisted) */

enum job_state {
    JOB_STATE_QUEUED,
    JOB_STATE_RUNNING,
    JOB_STATE_SUCCEEDED,
    JOB_STATE_FAILED,
    JOB_STATE_CANCELLED,
    JOB_STATE_COUNT,
};

struct job_event {
    uint64_t seq;
    char type[32];
    char *json;   /* {"seq", "time", "type", ...}, owned */
    size_t len;
};

struct job_epoch {
    int epoch;            /* 1-based */
    struct logs logs;
    double lr;
    double seconds;
};

struct job_ckpt {
    char name[TEMPLATE_MAX_PATH];  /* path relative to checkpoints/ */
    int policy;
    int epoch;
    uint64_t bytes;
    char sha256[FSUTIL_SHA256_HEX_SIZE];
    uint64_t seq;                  /* of the checkpoint event that wrote it */
    uint64_t ino;                  /* identity of the file the event describes, */
    int64_t mtime_ns;              /* taken when the event was applied (0 = unknown) */
};

struct job_best {
    bool has;
    double value;
    int epoch;
    char file[TEMPLATE_MAX_PATH];
};

struct job {
    char id[JOB_ID_LEN + 1];
    char dir[PATH_MAX];            /* <state_dir>/jobs/<id> */
    pthread_mutex_t mu;

    struct job_spec spec;          /* (mu) read-only after creation */
    char *spec_json;               /* (mu) normalised spec, read-only after creation */
    enum job_state state;          /* (mu) */
    double created, started, finished; /* (mu) unix seconds, 0 = not yet */
    char error[512];               /* (mu) */
    bool cancel_requested;         /* (mu) */
    struct {
        int epoch, epochs, batch, batches;
        double images_per_s, eta_s;
    } progress;                    /* (mu) */
    struct {
        int ranks;                 /* 0: one process */
        double collective_seconds_per_step;
    } mpi;                         /* (mu) from progress and epoch_end events */
    struct job_event *events;      /* (mu) persisted events, seq ascending */
    int n_events, cap_events;
    struct job_event recent[JOB_RECENT_PROGRESS]; /* (mu) ring of progress events */
    int n_recent, recent_next;
    uint64_t last_seq;             /* (mu) */
    uint64_t seq_reserved;         /* (mu) every seq up to this is covered by seq.reserved */
    struct job_epoch *history;     /* (mu) */
    int n_history, cap_history;
    struct job_ckpt *ckpts;        /* (mu) */
    int n_ckpts, cap_ckpts;
    struct job_best best[JOB_SPEC_MAX_CHECKPOINTS]; /* (mu) */
    uint64_t version;              /* (mu) bumped by every change of the above */
    char *cache;                   /* (mu) job resource JSON rendered at cache_version */
    uint64_t cache_version;

    atomic_int stop;               /* set to stop training after the current batch */
    pthread_mutex_t file_mu;
    int events_fd;                 /* (file_mu) append-only events.ndjson, -1 when closed */
    uint64_t seq_reserved_disk;    /* (file_mu) the number in seq.reserved */

    /* registry (job_registry.c and job_queue.c, under the registry lock) */
    int refs;
    bool queued_in_list;
    struct job *next, *qnext;
};

const char *job_state_name(enum job_state s);
/* -EINVAL for an unknown name. */
int job_state_parse(const char *name, enum job_state *ret);
bool job_state_terminal(enum job_state s);

struct job *job_new(const char *id, const char *dir);
void job_free(struct job *j);

/* RFC 3339 UTC with milliseconds: "2026-11-28T08:01:02.345Z". */
void job_format_time(double t, char out[32]);
double job_now(void);

/* Build the stored form of an event: {"seq": seq, "time": ..., "type": type,
 * <fields of data_json>} (malloc'ed, no newline).  NULL when data_json is
 * not a JSON object text. */
char *job_event_render(uint64_t seq, double time, const char *type, const char *data_json,
                       size_t *ret_len);

/* (mu held) Update the derived state from one event (type, parsed object). */
void job_apply_event(struct job *j, const char *type, const cJSON *obj);
/* (mu held) Keep an event in memory (takes json).  Progress events go to the
 * ring, the others to the persisted list. */
int job_keep_event(struct job *j, uint64_t seq, const char *type, char *json, size_t len);
/* (mu held) Copy events with seq > after (at most max) for the API. */
int job_copy_events(const struct job *j, uint64_t after, int max, struct api_events *ret);

/* (mu held) The full job resource as JSON text (malloc'ed copy), rendered
 * again only when the job changed since the last call. */
char *job_resource_text(struct job *j);
/* (mu held) The job resource (full) or its summary for lists. */
cJSON *job_to_json(const struct job *j, bool full);
/* (mu held) {"id": .., "history": [...]}. */
cJSON *job_history_json(const struct job *j);
/* (mu held) {"id": .., "checkpoints": [...]}. */
cJSON *job_checkpoints_json(const struct job *j);
/* (mu held) Keras CSVLogger text: "epoch,<sorted keys>\r\n" then one row per
 * epoch with 0-based epoch numbers and Python repr() floats. */
char *job_history_csv(const struct job *j);
/* The persisted record job.json: {"id", "name", "spec", "state", "created", ...}. */
cJSON *job_record_json(const struct job *j);

/* (mu held) The current best file of policy (from its improved events, or
 * the best monitored epoch that has a file); false when there is none. */
bool job_best_file(const struct job *j, int policy, char *out, size_t outsz);

#endif
