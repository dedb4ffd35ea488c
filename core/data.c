/* data.c - placeholder until implemented. */
