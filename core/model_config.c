/* model_config.c - placeholder until implemented. */
