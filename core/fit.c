/* fit.c - placeholder until implemented. */
