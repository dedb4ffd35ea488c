/* confine.c - file confinement: opening a download below a job's
 * checkpoints/ folder and removing a job's folder, both without ever
 * following a symbolic link.  See confine.h. */
#include "confine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "route.h"
#include "template.h"

/* Remove dirfd/name and everything below it, never following symlinks. */
int remove_tree_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int e = -errno;
        close(fd);
        return e;
    }
    int ret = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = remove_tree_at(dirfd(dir), de->d_name);
        if (r < 0 && ret == 0)
            ret = r;
    }
    closedir(dir);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && ret == 0)
        ret = -errno;
    return ret;
}

/* Open checkpoints/<name> component by component, never following a link. */
int open_confined(const char *job_dir, const char *name, int *ret_fd)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/checkpoints", job_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[TEMPLATE_MAX_PATH];
    snprintf(buf, sizeof(buf), "%s", name);
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        if (!api_component_valid(comp)) {
            close(fd);
            return -ENOENT;
        }
        int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (next ? O_DIRECTORY : O_NONBLOCK);
        int sub = openat(fd, comp, flags);
        int e = errno;
        close(fd);
        if (sub < 0)
            return -e;
        fd = sub;
        comp = next;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *ret_fd = fd;
    return 0;
}
