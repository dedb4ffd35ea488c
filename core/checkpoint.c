/* checkpoint.c - placeholder until implemented. */
