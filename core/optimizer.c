/* optimizer.c - placeholder until implemented. */
