/* progress.h - a job's events rendered as Keras' fit() prints them.
 *
 * Fed the events of one job in sequence order (the runner's sink in
 * `traind run`, the event stream in `traind submit --follow` / `traind
 * logs`), it writes what tf.keras 2.8+ prints with ModelCheckpoint(verbose=1):
 *   - not a terminal (verbose=2): "Epoch 3/40", the checkpoint lines, then
 *     "938/938 - 75s - loss: 0.2767 - accuracy: 0.8998 - val_loss: ...";
 *   - a terminal (verbose=1): the same header, a live bar redrawn in place
 *     from the progress events ("612/938 [==================>...........] -
 *     ETA: 21s - loss: 0.2767 - accuracy: 0.8998"), the checkpoint lines,
 *     then the epoch's final line "938/938 [==============================] -
 *     75s 80ms/step - loss: ... - val_accuracy: ...".
 * Lines come out when the event that completes them arrives: an epoch's
 * final line waits for that epoch's checkpoint events, a header for the
 * first event of its epoch.  Events must not repeat (the caller drops
 * duplicates by sequence number); progress events may be missing.
 * Not thread-safe; one renderer per output stream. */
#ifndef TRAIND_PROGRESS_H
#define TRAIND_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define PROGRESS_MAX_POLICIES 16

/* What the events do not say: from the job's spec. */
struct progress_config {
    int epochs;                           /* for "Epoch N/epochs" (0: from progress events) */
    int n_policies;
    int verbose[PROGRESS_MAX_POLICIES];   /* ModelCheckpoint verbose of each policy */
};

struct progress {
    FILE *out;                  /* not owned */
    bool tty;                   /* verbose=1 bar instead of verbose=2 lines */
    struct progress_config cfg;
    int header_epoch;           /* epoch whose "Epoch N/M" was printed last (0: none) */
    bool stopped;               /* early stopping printed: no more headers */
    bool has_pending;           /* an epoch's final line waits for its checkpoint lines */
    char pending[1024];
    bool bar_open;              /* a live bar is on the current terminal line */
    size_t bar_width;           /* its printed width, to blank it out when redrawn */
    int batches;                /* batches per epoch, from the latest event that said */
};

void progress_init(struct progress *p, FILE *out, bool tty, const struct progress_config *cfg);

/* The config of a job resource's "spec" object (epochs, checkpoints[].verbose). */
void progress_config_from_spec(struct progress_config *cfg, const cJSON *spec);

/* One event: type and its JSON object (the runner's data or a stored event
 * with seq/time/type; both work). */
void progress_event(struct progress *p, const char *type, const cJSON *ev);

/* The stream ended (terminal state or the caller stops following): prints a
 * final line still waiting and ends an open bar line. */
void progress_finish(struct progress *p);

#endif
