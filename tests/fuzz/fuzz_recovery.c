/* fuzz_recovery.c - reading a job folder back at start (daemon/recovery.c:
 * recovery_load_events, recovery_load_job) and the resume file a continued
 * job reads first (core/h5.c: h5_load_resume, its checksummed header).
 *
 * Input: the files of jobs/<id>/ as a crash, a full disk or a hand edit may
 * have left them, separated by NUL bytes:
 *   events.ndjson [NUL job.json [NUL seq.reserved [NUL resume.h5]]]
 * (resume.h5, last, may hold NULs itself).  Without a NUL only
 * events.ndjson is written and recovery_load_events reads it.
 *
 * Properties the headers promise:
 * - events: loading never fails on content (only on I/O) and keeps the file
 *   open for appends; what stays on disk is a prefix of the input that ends
 *   at a line end (a torn or malformed tail is cut off, nothing before it
 *   changes); every kept event's sequence number is above the one before.
 * - job.json: a folder that is not a usable job is skipped (NULL) and its
 *   events.ndjson is left as it was; a loaded job has a known state.
 * - seq.reserved: when it holds a plain decimal number, the job numbers on
 *   past it (last_seq >= it); anything else is ignored.
 * - resume.h5: h5_load_resume on a small model either succeeds (epoch >= 0)
 *   or fails leaving the model's weights, the optimizer's slots and
 *   iterations unchanged. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event_log.h"
#include "fuzz.h"
#include "h5.h"
#include "job_record.h"
#include "model.h"
#include "model_spec.h"
#include "optimizer.h"
#include "recovery.h"

#define JOB_ID "0123456789abcdef"
#define RESUME_FILE "resume.h5"

/* The model of the corpus' resume.h5 seeds (traind run with this inline
 * model and SGD with momentum 0.9: one optimizer slot). */
static const char model_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 28, 28, 1]}},"
    "{\"class_name\": \"AveragePooling2D\", \"config\": {\"pool_size\": [7, 7]}},"
    "{\"class_name\": \"Flatten\", \"config\": {}},"
    "{\"class_name\": \"Dense\", \"config\": {\"units\": 10, \"activation\": \"softmax\"}}]}}";

static char jobs_dir[512];
static char dir[600];
static const char *const files[] = {JOB_EVENTS_FILE, JOB_RECORD_FILE, JOB_SEQ_FILE, RESUME_FILE};
#define N_FILES (sizeof(files) / sizeof(files[0]))
static struct model *model;
static struct optimizer *opt;

static void file_path(char *out, size_t cap, const char *name)
{
    FUZZ_CHECK(snprintf(out, cap, "%s/%s", dir, name) < (int)cap);
}

static void cleanup(void)
{
    char path[700];
    for (size_t i = 0; i < N_FILES; i++) {
        file_path(path, sizeof(path), files[i]);
        unlink(path);
    }
    rmdir(dir);
    rmdir(jobs_dir);
    optimizer_free(opt);
    model_free(model);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(jobs_dir, sizeof(jobs_dir), "%s/traind-fuzz-recovery-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(jobs_dir) != NULL);
    snprintf(dir, sizeof(dir), "%s/" JOB_ID, jobs_dir);
    FUZZ_CHECK(mkdir(dir, 0700) == 0);

    struct model_spec spec;
    struct diag d = {{0}, {0}};
    FUZZ_CHECK(model_spec_parse_json(&spec, model_json, strlen(model_json), NULL, &d) == 0);
    FUZZ_CHECK(model_create(&model, &spec, 1, 1, &d) == 0);
    model_spec_free(&spec);
    model_init_weights(model, 1);
    struct optimizer_config cfg;
    optimizer_config_default(&cfg, OPTIMIZER_KIND_SGD);
    cfg.momentum = 0.9;
    FUZZ_CHECK(optimizer_create(&opt, &cfg, model, &d) == 0);
    atexit(cleanup);
}

static void write_part(const char *name, const uint8_t *data, size_t size)
{
    char path[700];
    file_path(path, sizeof(path), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    FUZZ_CHECK(close(fd) == 0);
}

/* What is left of events.ndjson: *ret_kept bytes, equal to the input's
 * first *ret_kept bytes. */
static size_t events_kept(const uint8_t *data, size_t size)
{
    char path[700];
    file_path(path, sizeof(path), JOB_EVENTS_FILE);
    struct stat st;
    FUZZ_CHECK(stat(path, &st) == 0);
    size_t kept = (size_t)st.st_size;
    FUZZ_CHECK(kept <= size);
    uint8_t *back = malloc(kept + 1);
    FUZZ_CHECK(back != NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(read(fd, back, kept + 1) == (ssize_t)kept);
    close(fd);
    FUZZ_CHECK(kept == 0 || memcmp(back, data, kept) == 0);
    free(back);
    return kept;
}

static void check_events(const struct job *j)
{
    FUZZ_CHECK(j->events_fd >= 0);
    uint64_t prev = 0;
    for (int i = 0; i < j->n_events; i++) {
        FUZZ_CHECK(j->events[i].seq > prev);
        prev = j->events[i].seq;
    }
    FUZZ_CHECK(j->last_seq >= prev);
}

/* seq.reserved as the daemon writes it ("N\n", or "N"): N, else -1. */
static long long canonical_seq(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 20)
        return -1;
    char text[32];
    memcpy(text, data, size);
    text[size] = '\0';
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    char again[32];
    snprintf(again, sizeof(again), "%llu", v);
    if ((*end != '\0' && strcmp(end, "\n") != 0) || strncmp(text, again, strlen(again)) != 0 ||
        (size_t)(end - text) != strlen(again) || v > (1ULL << 62))
        return -1;
    return (long long)v;
}

static void check_resume(const uint8_t *data, size_t size)
{
    write_part(RESUME_FILE, data, size);
    size_t bytes = model->n_params * sizeof(float);
    float *params = malloc(bytes), *slot = malloc(bytes);
    FUZZ_CHECK(params && slot);
    memcpy(params, model->params, bytes);
    memcpy(slot, opt->slots[0], bytes);
    int64_t iterations = opt->iterations;

    char path[700];
    file_path(path, sizeof(path), RESUME_FILE);
    int epoch = -1;
    char *state = NULL;
    struct diag d = {{0}, {0}};
    int r = h5_load_resume(model, opt, path, &epoch, &state, &d);
    if (r == 0) {
        FUZZ_CHECK(epoch >= 0);
        free(state);
    } else {
        FUZZ_CHECK(r < 0 && d.message[0]);
        FUZZ_CHECK(epoch == -1 && state == NULL);
        FUZZ_CHECK(memcmp(params, model->params, bytes) == 0);
        FUZZ_CHECK(memcmp(slot, opt->slots[0], bytes) == 0);
        FUZZ_CHECK(opt->iterations == iterations);
    }
    free(params);
    free(slot);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    const uint8_t *part[N_FILES] = {data};
    size_t len[N_FILES] = {size};
    size_t n = 1;
    while (n < N_FILES) {
        const uint8_t *nul = memchr(part[n - 1], 0, len[n - 1]);
        if (!nul)
            break;
        part[n] = nul + 1;
        len[n] = len[n - 1] - (size_t)(part[n] - part[n - 1]);
        len[n - 1] = (size_t)(nul - part[n - 1]);
        n++;
    }
    char path[700];
    for (size_t i = 0; i < N_FILES; i++) {
        file_path(path, sizeof(path), files[i]);
        unlink(path);
    }
    write_part(JOB_EVENTS_FILE, part[0], len[0]);

    if (n == 1) { /* events.ndjson alone */
        struct job *j = job_new(JOB_ID, dir);
        FUZZ_CHECK(j != NULL);
        FUZZ_CHECK(recovery_load_events(j) == 0);
        check_events(j);
        job_free(j);
        size_t kept = events_kept(part[0], len[0]);
        FUZZ_CHECK(kept == 0 || part[0][kept - 1] == '\n');
        return 0;
    }

    write_part(JOB_RECORD_FILE, part[1], len[1]);
    if (n > 2)
        write_part(JOB_SEQ_FILE, part[2], len[2]);
    struct job *j = recovery_load_job(jobs_dir, JOB_ID);
    if (j) {
        check_events(j);
        FUZZ_CHECK(j->state >= JOB_STATE_QUEUED && j->state <= JOB_STATE_CANCELLED);
        long long v = n > 2 ? canonical_seq(part[2], len[2]) : -1;
        if (v >= 0)
            FUZZ_CHECK(j->last_seq >= (uint64_t)v && j->seq_reserved == (uint64_t)v);
        job_free(j);
        size_t kept = events_kept(part[0], len[0]);
        FUZZ_CHECK(kept == 0 || part[0][kept - 1] == '\n');
    } else {
        FUZZ_CHECK(events_kept(part[0], len[0]) == len[0]); /* untouched */
    }
    if (n > 3)
        check_resume(part[3], len[3]);
    return 0;
}
