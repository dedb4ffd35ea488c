/* pool.c - placeholder until implemented. */
