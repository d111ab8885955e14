/* The small training set the intent router's unit tests share: three
 * intents of four examples each and three out-of-scope examples, worded
 * so that each intent has its own vocabulary. */
#ifndef TEST_NLU_TOY_H
#define TEST_NLU_TOY_H

/* clang-format off */
#define NLU_TOY_EXAMPLES                                 \
    {"book a flight to paris", "book_flight"},           \
    {"i need a plane ticket to rome", "book_flight"},    \
    {"fly me to berlin next week", "book_flight"},       \
    {"reserve a flight for tomorrow", "book_flight"},    \
    {"what's the weather like today", "weather"},        \
    {"will it rain tomorrow", "weather"},                \
    {"how hot is it outside", "weather"},                \
    {"is it going to snow", "weather"},                  \
    {"what is my account balance", "balance"},           \
    {"how much money do i have", "balance"},             \
    {"show me my balance", "balance"},                   \
    {"check my bank balance please", "balance"},         \
    {"tell me a joke", "oos"},                           \
    {"who won the football game", "oos"},                \
    {"what is the meaning of life", "oos"}
/* clang-format on */

#endif
