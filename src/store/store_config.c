/* The store's options from config.h's store section (store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/store.h"

void store_options_from_config(const core_config_t *cfg, store_options_t *opt, char *path_buf,
                               size_t path_size)
{
    memset(opt, 0, sizeof(*opt));
    if (cfg->store.path != NULL && cfg->store.path[0] != '\0')
        snprintf(path_buf, path_size, "%s", cfg->store.path);
    else
        snprintf(path_buf, path_size, "%s/chorus.db", cfg->data_dir);
    opt->path = path_buf;
    opt->synchronous_full = strcmp(cfg->store.synchronous, "full") == 0;
    opt->queue_max = (size_t)cfg->store.queue_max_batches;
    opt->batch_max = (size_t)cfg->store.batch_max;
    opt->retry_ms = (int)cfg->store.retry_ms;
    opt->writer_nice = (int)cfg->store.writer_nice;
}

void store_report_costs_from_config(const core_config_t *cfg, store_report_query_t *q)
{
    q->price_in_per_mtok = strtod(cfg->store.llm_price_in_per_mtok, NULL);
    q->price_out_per_mtok = strtod(cfg->store.llm_price_out_per_mtok, NULL);
    q->message_cost = strtod(cfg->store.message_cost, NULL);
    q->message_costs = cfg->store.message_costs;
}
