/* The utterance clusterer: similar requests group together, unrelated ones
 * do not, identical texts fold into one item, and the result is the same
 * whatever the order the utterances were added in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/learn.h"

static const char *const pets[] = {
    "can I bring my dog on the plane", "can my dog fly with me in the cabin",
    "is my dog allowed in the cabin",  "travelling with a dog in the cabin",
    "can I bring my cat on the plane", "can my cat fly in the cabin with me",
};
static const char *const wifi[] = {
    "is there wifi on board", "how much is the wifi on board",    "does the plane have wifi",
    "wifi on board price",    "can I use wifi during the flight",
};
static const char *const other[] = {"what is the meaning of life", "sing me a song please"};

/* Adds every utterance, in order or reversed; returns the learner. */
static learn_t *run(int reversed)
{
    learn_t *l = learn_new(NULL);
    const char *all[16];
    size_t n = 0;
    for (size_t i = 0; i < 6; i++)
        all[n++] = pets[i];
    for (size_t i = 0; i < 5; i++)
        all[n++] = wifi[i];
    for (size_t i = 0; i < 2; i++)
        all[n++] = other[i];
    for (size_t i = 0; i < n; i++) {
        const char *t = all[reversed ? n - 1 - i : i];
        learn_add(l, t, strlen(t), 1, reversed ? n - 1 - i : i);
    }
    assert_int_equal(learn_run(l, NULL), 0);
    return l;
}

/* The cluster holding text, or SIZE_MAX. */
static size_t cluster_of(const learn_t *l, const char *text)
{
    for (size_t c = 0; c < learn_n_clusters(l); c++) {
        const learn_cluster_t *k = learn_cluster(l, c);
        for (size_t i = 0; i < k->n_items; i++)
            if (strcmp(learn_item_text(l, k->items[i]), text) == 0)
                return c;
    }
    return SIZE_MAX;
}

static void test_groups_similar_requests(void **state)
{
    (void)state;
    learn_t *l = run(0);
    size_t p = cluster_of(l, pets[0]), w = cluster_of(l, wifi[0]);
    assert_true(p != SIZE_MAX && w != SIZE_MAX && p != w);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(cluster_of(l, pets[i]), p);
    /* the wifi questions that share more than the word itself group; none
     * of them joins the pets */
    assert_int_equal(cluster_of(l, wifi[1]), w);
    assert_int_equal(cluster_of(l, wifi[3]), w);
    for (size_t i = 0; i < 5; i++)
        assert_int_not_equal(cluster_of(l, wifi[i]), p);
    assert_int_not_equal(cluster_of(l, other[0]), p);
    assert_int_not_equal(cluster_of(l, other[0]), w);
    assert_int_not_equal(cluster_of(l, other[0]), cluster_of(l, other[1]));
    /* heaviest first, and the biggest one is named by its words */
    assert_int_equal(p, 0);
    const learn_cluster_t *k = learn_cluster(l, 0);
    assert_int_equal(k->weight, 6);
    assert_true(k->cohesion > 0.3 && k->cohesion <= 1.0001);
    int has_dog = 0;
    for (size_t i = 0; k->top[i] != NULL; i++)
        has_dog |= strcmp(k->top[i], "dog") == 0 || strcmp(k->top[i], "cabin") == 0;
    assert_true(has_dog);
    learn_free(l);
}

static void test_order_does_not_matter(void **state)
{
    (void)state;
    learn_t *a = run(0), *b = run(1);
    assert_int_equal(learn_n_clusters(a), learn_n_clusters(b));
    for (size_t c = 0; c < learn_n_clusters(a); c++) {
        const learn_cluster_t *x = learn_cluster(a, c), *y = learn_cluster(b, c);
        assert_int_equal(x->weight, y->weight);
        assert_int_equal(x->n_items, y->n_items);
        assert_string_equal(learn_item_text(a, x->items[0]), learn_item_text(b, y->items[0]));
    }
    learn_free(a);
    learn_free(b);
}

static void test_identical_texts_fold(void **state)
{
    (void)state;
    learn_t *l = learn_new(NULL);
    long a = learn_add(l, "Is there WiFi on board?", 23, 2, 7);
    long b = learn_add(l, "is there wifi on board", 22, 3, 9);
    assert_true(a >= 0);
    assert_int_equal(a, b);
    assert_int_equal(learn_add(l, "?!", 2, 1, 1), -1);
    assert_int_equal(learn_item_weight(l, (size_t)a), 5);
    const size_t *tags;
    assert_int_equal(learn_item_tags(l, (size_t)a, &tags), 2);
    assert_int_equal(tags[0], 7);
    assert_int_equal(tags[1], 9);
    assert_string_equal(learn_item_text(l, (size_t)a), "Is there WiFi on board?");
    assert_int_equal(learn_run(l, NULL), 0);
    assert_int_equal(learn_n_clusters(l), 1);
    assert_int_not_equal(learn_run(l, NULL), 0);
    learn_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_similar_requests),
        cmocka_unit_test(test_order_does_not_matter),
        cmocka_unit_test(test_identical_texts_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
