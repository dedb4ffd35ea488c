/* fuzz_recovery.c - reading a job's event log back at start
 * (daemon/recovery.c: recovery_load_events).
 *
 * Input: the bytes of jobs/<id>/events.ndjson, as a crash, a full disk or
 * a hand edit may have left them.  Properties recovery.h promises: it never
 * fails on content (only on I/O), it keeps the file open for appends, and
 * what stays on disk is a prefix of the input that ends at a line end (a
 * torn or malformed tail is cut off, nothing before it is changed), with
 * every kept event's sequence number above the one before. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event_log.h"
#include "fuzz.h"
#include "job_record.h"
#include "recovery.h"

static char dir[512];
static char path[600];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/traind-fuzz-recovery-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/" JOB_EVENTS_FILE, dir);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    FUZZ_CHECK(close(fd) == 0);

    struct job *j = job_new("0123456789abcdef", dir);
    FUZZ_CHECK(j != NULL);
    int r = recovery_load_events(j);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(j->events_fd >= 0);
    uint64_t prev = 0;
    for (int i = 0; i < j->n_events; i++) {
        FUZZ_CHECK(j->events[i].seq > prev);
        prev = j->events[i].seq;
    }
    FUZZ_CHECK(j->last_seq >= prev);
    job_free(j);

    struct stat st;
    FUZZ_CHECK(stat(path, &st) == 0);
    size_t kept = (size_t)st.st_size;
    FUZZ_CHECK(kept <= size);
    FUZZ_CHECK(kept == 0 || data[kept - 1] == '\n');
    uint8_t *back = malloc(kept + 1);
    FUZZ_CHECK(back != NULL);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(read(fd, back, kept + 1) == (ssize_t)kept);
    close(fd);
    FUZZ_CHECK(kept == 0 || memcmp(back, data, kept) == 0);
    free(back);
    return 0;
}
