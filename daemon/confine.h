/* confine.h - file access that stays inside a job's folder. */
#ifndef TRAIND_CONFINE_H
#define TRAIND_CONFINE_H

/* Open <job_dir>/checkpoints/<name> read-only, component by component with
 * O_NOFOLLOW, each component checked by api_component_valid; only a regular
 * file is returned.  *ret_fd (O_CLOEXEC, blocking) is the caller's.
 * -ENOENT for anything not allowed, else -errno. */
int open_confined(const char *job_dir, const char *name, int *ret_fd);
/* Remove parent/name and everything below it, never following symlinks.
 * 0 (also when it did not exist) or the first -errno met. */
int remove_tree_at(int parent, const char *name);

#endif
