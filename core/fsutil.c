/* fsutil.c - placeholder until implemented. */
