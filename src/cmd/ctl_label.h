/* ctl_label.h — `chorusctl label`: one label from the command line, CSV
 * export and import for teams, an interactive review in a terminal
 * (ctl_label.c), and the training file built from the labels
 * (ctl_label_train.c). docs/flywheel.md, "Improve". chorusctl only. */
#ifndef CHORUS_CTL_LABEL_H
#define CHORUS_CTL_LABEL_H

#include <jansson.h>

/* Records labels ([{conversation, seq, label}]) in one batch through the
 * store's writer, with one audit row; all or nothing. Prints why on failure.
 * Returns 0 or 1. */
int label_write(const char *db, const json_t *labels, const char *by, const char *action);

/* chorusctl label train --db FILE --flows DIR [--file NAME] */
int label_train(int argc, char **argv);

#endif
