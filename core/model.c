/* model.c - placeholder until implemented. */
