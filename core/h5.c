/* h5.c - placeholder until implemented. */
