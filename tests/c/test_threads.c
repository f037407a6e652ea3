/*
 * Threads: 8 workers seal, encrypt, wrap and derive on one keychain while
 * another thread rotates it; every result checked, every error reported
 * through the worker's own error object.
 */
#include "harness.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Threads: 8 workers on one keychain while another thread rotates     */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t msg[24];
    size_t msg_len;
    uint8_t aad[12];
    uint8_t key[32];
    ks_buffer sealed, encrypted;
    ks_envelope wrapped;
} thread_rec;

typedef struct {
    const ks_keychain *kc;
    int id;
    size_t min_iter, max_iter;
    atomic_bool *rotator_done;
    atomic_int *sealed_once; /* workers that sealed (or gave up) */
    atomic_int *rotated;     /* rotations done so far */
    pthread_barrier_t *start;
    const uint8_t *origin_key; /* the derived key every thread must see */
    thread_rec *recs;
    size_t n;
    int bad; /* failed checks in this worker (reported, then asserted once) */
} worker_arg;

/* In workers: report a failure, tally it, count nothing on success. */
static bool wcheck_(worker_arg *a, bool ok, const char *expr, int line)
{
    if (!ok) {
        a->bad++;
        if (a->bad <= 5)
            fprintf(stderr, "test_threads.c:%d: worker %d FAILED: %s\n", line, a->id, expr);
    }
    return ok;
}
/* A call that passed E: its status must be KS_OK, and this thread's error
 * slot must agree (NULL; on a failure, an object with the same status). */
static bool wok_(worker_arg *a, ks_status st, const char *call, int line)
{
    ks_error *e = h_err;
    h_err = NULL;
    bool slot_ok = st == KS_OK ? e == NULL : e != H_UNSET && e != NULL && ks_error_status(e) == st;
    if ((st != KS_OK || !slot_ok) && a->bad < 5)
        fprintf(stderr, "test_threads.c:%d: worker %d: %s -> %s: %s%s\n", line, a->id, call, ks_status_name((int)st),
                e != NULL && e != H_UNSET ? ks_error_message(e) : "", slot_ok ? "" : " (error slot inconsistent)");
    if (e != NULL && e != H_UNSET)
        ks_error_free(e);
    return wcheck_(a, st == KS_OK && slot_ok, call, line);
}
#define WCHECK(a, c) wcheck_((a), (c), #c, __LINE__)
#define WOK(a, call) wok_((a), (h_err = H_UNSET, (call)), #call, __LINE__)

static void *worker(void *p)
{
    worker_arg *a = p;
    char ctx[32];
    snprintf(ctx, sizeof ctx, "worker %d", a->id);
    g_ctx = ctx;
    pthread_barrier_wait(a->start);
    bool counted = false;
    for (size_t i = 0; i < a->max_iter && (i < a->min_iter || !atomic_load(a->rotator_done)); i++) {
        /* Deterministic whatever the scheduling: the rotator starts once
         * every worker has sealed under the first key, and each worker
         * waits at the middle of its minimum for the first rotation, so
         * ciphertexts under two keys always exist. */
        if (i == 1 && !counted) {
            atomic_fetch_add(a->sealed_once, 1);
            counted = true;
        }
        if (i == a->min_iter / 2) {
            while (atomic_load(a->rotated) == 0)
                sched_yield();
        }
        thread_rec *r = &a->recs[a->n];
        memset(r, 0, sizeof *r);
        r->msg_len = (size_t)snprintf((char *)r->msg, sizeof r->msg, "t%d-i%zu", a->id, i);
        snprintf((char *)r->aad, sizeof r->aad, "aad-%d", a->id);
        for (size_t k = 0; k < 32; k++)
            r->key[k] = (uint8_t)(a->id * 31 + i * 7 + k);
        r->sealed = sent_buf();
        r->encrypted = sent_buf();
        ks_buffer o = sent_buf();
        if (!WOK(a, ks_keychain_seal(a->kc, r->msg, r->msg_len, r->aad, 6, &r->sealed, E)))
            break;
        if (WOK(a, ks_keychain_unseal(a->kc, r->sealed.data, r->sealed.len, r->aad, 6, &o, E)))
            WCHECK(a, buf_eq(o, r->msg, r->msg_len));
        ks_buffer_free(&o);
        if (!WOK(a, ks_keychain_encrypt(a->kc, r->msg, r->msg_len, r->aad, 6, &r->encrypted, E))) {
            ks_buffer_free(&r->sealed);
            break;
        }
        o = sent_buf();
        if (WOK(a, ks_keychain_decrypt(a->kc, r->encrypted.data, r->encrypted.len, r->aad, 6, &o, E)))
            WCHECK(a, buf_eq(o, r->msg, r->msg_len));
        ks_buffer_free(&o);
        if (!WOK(a, ks_keychain_wrap_key(a->kc, r->key, 32, r->aad, 6, &r->wrapped, E))) {
            ks_buffer_free(&r->sealed);
            ks_buffer_free(&r->encrypted);
            break;
        }
        o = sent_buf();
        if (WOK(a, ks_keychain_unwrap_key(a->kc, &r->wrapped, r->aad, 6, &o, E)))
            WCHECK(a, buf_eq(o, r->key, 32));
        ks_buffer_free(&o);
        a->n++;
        if (i % 8 == 0) {
            o = sent_buf();
            if (WOK(a, ks_keychain_derive_origin_key(a->kc, 0, (const uint8_t *)"https://app.example", 19,
                                                 (const uint8_t *)"web-1", 5, 0, &o, E)))
                WCHECK(a, buf_eq(o, a->origin_key, 32));
            ks_buffer_free(&o);
        }
    }
    if (!counted)
        atomic_fetch_add(a->sealed_once, 1);
    g_ctx = "";
    return NULL;
}

typedef struct {
    ks_keychain *kc;
    int rotations;
    int workers;
    atomic_bool *done;
    atomic_int *sealed_once;
    atomic_int *rotated;
    pthread_barrier_t *start;
    uint32_t *ids;
} rotator_arg;

static void *rotator(void *p)
{
    rotator_arg *a = p;
    g_ctx = "rotator";
    pthread_barrier_wait(a->start);
    while (atomic_load(a->sealed_once) < a->workers)
        sched_yield();
    for (int i = 0; i < a->rotations; i++) {
        ks_key_info info;
        if (OK(ks_keychain_rotate(a->kc, &info, E)))
            a->ids[i] = info.key_id;
        atomic_fetch_add(a->rotated, 1);
        sleep_ms(1); /* pacing only: spreads the rotations over the run */
    }
    atomic_store(a->done, true);
    g_ctx = "";
    return NULL;
}

static void group_threads(void)
{
    enum { WORKERS = 8 };
    group_begin("threads");
    const int rotations = g_quick ? 10 : 50;
    const size_t min_iter = g_quick ? 10 : 100, max_iter = g_quick ? 200 : 5000;
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub, E));
    ks_buffer ok0 = sent_buf();
    OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://app.example", 19, (const uint8_t *)"web-1", 5, 0,
                                     &ok0, E));
    CHECK(ok0.len == 32);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, WORKERS + 1);
    atomic_bool done;
    atomic_init(&done, false);
    atomic_int sealed_once, rotated;
    atomic_init(&sealed_once, 0);
    atomic_init(&rotated, 0);
    worker_arg wa[WORKERS];
    pthread_t wt[WORKERS], rt;
    uint32_t *ids = calloc((size_t)rotations, sizeof *ids);
    rotator_arg ra = {kc, rotations, WORKERS, &done, &sealed_once, &rotated, &start, ids};
    for (int i = 0; i < WORKERS; i++) {
        wa[i] = (worker_arg){kc,           i, min_iter, max_iter, &done, &sealed_once, &rotated, &start,
                             ok0.data,     calloc(max_iter, sizeof(thread_rec)),        0,     0};
        CHECK(pthread_create(&wt[i], NULL, worker, &wa[i]) == 0);
    }
    CHECK(pthread_create(&rt, NULL, rotator, &ra) == 0);
    CHECK(pthread_join(rt, NULL) == 0);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(wt[i], NULL) == 0);
    pthread_barrier_destroy(&start);

    /* After the storm: every ciphertext opens to what was sealed. */
    size_t total = 0;
    int bad = 0;
    uint32_t first_id = 0;
    bool several_keys = false;
    for (int i = 0; i < WORKERS; i++) {
        for (size_t j = 0; j < wa[i].n; j++) {
            thread_rec *r = &wa[i].recs[j];
            ks_buffer o = sent_buf();
            if (ks_keychain_unseal(kc, r->sealed.data, r->sealed.len, r->aad, 6, &o, NULL) != KS_OK ||
                !buf_eq(o, r->msg, r->msg_len))
                bad++;
            ks_buffer_free(&o);
            o = sent_buf();
            if (ks_keychain_decrypt(kc, r->encrypted.data, r->encrypted.len, r->aad, 6, &o, NULL) != KS_OK ||
                !buf_eq(o, r->msg, r->msg_len))
                bad++;
            ks_buffer_free(&o);
            o = sent_buf();
            if (ks_keychain_unwrap_key(kc, &r->wrapped, r->aad, 6, &o, NULL) != KS_OK || !buf_eq(o, r->key, 32))
                bad++;
            ks_buffer_free(&o);
            uint32_t id = sealed_key_id(r->sealed);
            if (first_id == 0)
                first_id = id;
            else if (id != first_id)
                several_keys = true;
            ks_buffer_free(&r->sealed);
            ks_buffer_free(&r->encrypted);
            ks_envelope_clear(&r->wrapped);
            total++;
        }
        CHECK(wa[i].n >= min_iter);
        CHECK(wa[i].bad == 0);
        free(wa[i].recs);
    }
    CHECK(bad == 0);
    CHECK(total >= WORKERS * min_iter);
    /* The workers really ran across rotations. */
    CHECK(several_keys);
    size_t count = 0;
    OK(ks_keychain_key_count(kc, &count, E));
    CHECK(count == 2 + (size_t)rotations);
    ks_key_info p;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &p, E));
    CHECK(p.key_id == ids[rotations - 1] && p.version == (uint32_t)rotations + 1);
    ks_counters c;
    OK(ks_keychain_counters(kc, &c, E));
    CHECK(c.rotations == (uint64_t)rotations);
    CHECK(c.seal == total && c.encrypt == total && c.wrap == total);
    CHECK(c.unseal_ok == 2 * total && c.decrypt_ok == 2 * total && c.unwrap_ok == 2 * total);
    CHECK(c.unseal_failed == 0 && c.decrypt_failed == 0 && c.unwrap_failed == 0);
    CHECK(ev_count(&rec, KS_EVENT_KEY_ROTATED) == rotations);
    CHECK(ev_count(&rec, KS_EVENT_DECRYPT_FAILED) == 0);
    OK(ks_keychain_unsubscribe(kc, sub, E));
    ks_buffer_free(&ok0);
    free(ids);
    ks_keychain_free(kc);
    pthread_mutex_destroy(&rec.mu);
    char extra[128];
    snprintf(extra, sizeof extra, "  (%d workers, %zu records, %d rotations)", WORKERS, total, rotations);
    group_end(extra);
}

/* ------------------------------------------------------------------ */

void run_threads(void)
{
    group_threads();
}
