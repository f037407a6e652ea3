/*
 * keystrata C tests of shared keychains (issue 12): one keychain file used
 * by several handles and processes at once, through the public C ABI only.
 *
 *   ./test_shared            (make c-shared: under ASan + UBSan)
 *
 * Groups:
 *   two handles        one process, two handles on one file: one rotates,
 *                      the other seals, encrypts and wraps; then both rotate
 *                      and encrypt from two threads at once.
 *   fork               a parent and three forked children (one of which
 *                      forks a grandchild) seal, encrypt, wrap and rotate on
 *                      the handle they share through fork(), with a small
 *                      policy (40 encryptions per key, blocks of 4).
 *   encrypt-only       a process that only encrypts (never writes after its
 *                      first block) while another process rotates: it adopts
 *                      every new primary, polled with a deadline.
 *
 * After each group a fresh handle loaded from the file must decrypt every
 * ciphertext any handle or process produced, hold every key any of them
 * made, hold exactly 1 + (rotations reported by events) encryption keys,
 * record at least as much usage per key as there are ciphertexts under it,
 * and (with a policy) have no key with more ciphertexts than its maximum:
 * a count owned twice (a forked child using its parent's block) shows as
 * such an excess.
 *
 * Every process records what it made as lines in its own file:
 *   S|E <key_id> <aad hex> <plaintext hex> <ciphertext hex>
 *   W   <key_id> <context hex> <key hex> <ciphertext hex> <key_version>
 *   R   <key_id> <version> <automatic 0|1>       (from the event callback)
 *
 * The last line is exactly "c-shared: N passed, M failed" (N, M count
 * assertions); the exit status is 0 only if M is 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keystrata.h"

/* Every call passes E: this thread's error slot. E frees the error object
 * of the previous call first, so a failure nobody reports leaks nothing;
 * last_msg() reads the message of the last call (or ""). */
static _Thread_local ks_error *t_err;
#define E (ks_error_free(t_err), t_err = NULL, &t_err)
static const char *last_msg(void)
{
    return ks_error_message(t_err);
}

/* ------------------------------------------------------------------ */
/* Assertions                                                          */
/* ------------------------------------------------------------------ */

static atomic_int g_pass;
static atomic_int g_fail;

static bool check_(bool ok, const char *expr, const char *file, int line)
{
    if (ok)
        atomic_fetch_add(&g_pass, 1);
    else {
        atomic_fetch_add(&g_fail, 1);
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, expr);
    }
    return ok;
}
#define CHECK(c) check_((c), #c, __FILE__, __LINE__)

static bool ok_(ks_status st, const char *call, const char *file, int line)
{
    if (st == KS_OK) {
        atomic_fetch_add(&g_pass, 1);
        return true;
    }
    atomic_fetch_add(&g_fail, 1);
    fprintf(stderr, "%s:%d: FAILED: %s -> %s: %s\n", file, line, call, ks_status_name((int)st),
            last_msg());
    return false;
}
#define OK(call) ok_((call), #call, __FILE__, __LINE__)

static int g_group_pass, g_group_fail;
static const char *g_group;

static void group_begin(const char *name)
{
    g_group = name;
    g_group_pass = atomic_load(&g_pass);
    g_group_fail = atomic_load(&g_fail);
}

static void group_end(const char *extra)
{
    int p = atomic_load(&g_pass) - g_group_pass;
    int f = atomic_load(&g_fail) - g_group_fail;
    if (f)
        printf("FAIL %-14s %5d checks, %d failed  %s\n", g_group, p + f, f, extra);
    else
        printf("ok   %-14s %5d checks  %s\n", g_group, p, extra);
    fflush(stdout);
}

/* In a forked child: a failure is reported on stderr and in the exit status. */
static void die(const char *what, ks_status st)
{
    fprintf(stderr, "pid %d: %s -> %s: %s\n", (int)getpid(), what, ks_status_name((int)st), last_msg());
    _exit(3);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_hex(FILE *f, const uint8_t *p, size_t n)
{
    if (n == 0) {
        fputc('-', f); /* an empty field stays a field */
        return;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

typedef struct {
    uint8_t *p;
    size_t n;
} bytes_t;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool unhex(const char *s, bytes_t *out)
{
    out->p = NULL;
    out->n = 0;
    if (strcmp(s, "-") == 0)
        return true;
    size_t len = strlen(s);
    if (len % 2)
        return false;
    out->p = malloc(len / 2 + 1);
    if (!out->p)
        return false;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out->p);
            out->p = NULL;
            return false;
        }
        out->p[i] = (uint8_t)(hi * 16 + lo);
    }
    out->n = len / 2;
    return true;
}

static char g_tmpdir[256];

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && errno == EISDIR)
            rm_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A fresh directory under the test's temporary directory. */
static void subdir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_tmpdir, name);
    mkdir(out, 0700);
}

static ks_policy small_policy(uint64_t max, uint64_t block)
{
    ks_policy p = ks_policy_default();
    p.max_encryptions_per_key = max;
    p.usage_block = block;
    return p;
}

/* ------------------------------------------------------------------ */
/* Actors: one handle's (or process's) record file and event callback  */
/* ------------------------------------------------------------------ */

typedef struct {
    FILE *out;
    pthread_mutex_t mu;
    int rotations; /* encryption rotations this actor's events reported */
    unsigned seq;  /* makes plaintexts distinct */
    int id;
} actor_t;

static void actor_open(actor_t *a, const char *dir, const char *name, int id)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s.rec", dir, name);
    a->out = fopen(p, "w");
    if (!a->out) {
        perror(p);
        exit(2);
    }
    pthread_mutex_init(&a->mu, NULL);
    a->rotations = 0;
    a->seq = 0;
    a->id = id;
}

static void actor_close(actor_t *a)
{
    if (a->out)
        fclose(a->out);
    a->out = NULL;
    pthread_mutex_destroy(&a->mu);
}

/* In a forked child: the same actor, its own file. */
static void actor_reopen_in_child(actor_t *a, const char *dir, const char *name, int id)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s.rec", dir, name);
    /* The parent's FILE buffer was flushed before fork; drop the copy. */
    a->out = fopen(p, "w");
    if (!a->out)
        _exit(2);
    a->rotations = 0;
    a->id = id;
}

static void on_event(const ks_event *e, void *user)
{
    actor_t *a = user;
    if (e->kind != KS_EVENT_KEY_ROTATED || e->purpose != KS_PURPOSE_ENCRYPT)
        return;
    pthread_mutex_lock(&a->mu);
    fprintf(a->out, "R %" PRIu32 " %" PRIu32 " %d\n", e->key_id, e->key_version, e->automatic ? 1 : 0);
    fflush(a->out);
    a->rotations++;
    pthread_mutex_unlock(&a->mu);
}

/*
 * One operation (seal, encrypt or wrap, by `which` % 3) on `kc`, recorded.
 * Returns the key_id of the ciphertext, 0 on failure (already reported).
 */
static uint32_t actor_op(actor_t *a, const ks_keychain *kc, unsigned which, bool in_child)
{
    uint8_t pt[16], aad[8];
    pthread_mutex_lock(&a->mu);
    unsigned seq = a->seq++;
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(a->id * 31 + seq * 7 + i);
    memcpy(aad, &seq, sizeof seq < sizeof aad ? sizeof seq : sizeof aad);
    aad[4] = (uint8_t)a->id;
    aad[5] = 'a';
    aad[6] = 'd';
    aad[7] = (uint8_t)which;
    ks_buffer ct = {0};
    ks_status st;
    uint32_t id = 0;
    switch (which % 3) {
    case 0:
        st = ks_keychain_seal(kc, pt, sizeof pt, aad, sizeof aad, &ct, E);
        if (st == KS_OK) {
            id = be32(ct.data + 1);
            pthread_mutex_lock(&a->mu);
            fprintf(a->out, "S %" PRIu32 " ", id);
        }
        break;
    case 1:
        st = ks_keychain_encrypt(kc, pt, sizeof pt, aad, sizeof aad, &ct, E);
        if (st == KS_OK) {
            id = be32(ct.data + 5);
            pthread_mutex_lock(&a->mu);
            fprintf(a->out, "E %" PRIu32 " ", id);
        }
        break;
    default: {
        ks_envelope env;
        uint8_t dek[32];
        memcpy(dek, pt, 16);
        memcpy(dek + 16, pt, 16);
        st = ks_keychain_wrap_key(kc, dek, sizeof dek, aad, sizeof aad, &env, E);
        if (st == KS_OK) {
            size_t n = env.ciphertext_len;
            const uint8_t *c = env.ciphertext;
            id = (uint32_t)strtoul(env.key_id, NULL, 10);
            if (n < 5 || be32(c + 1) != id) {
                if (in_child)
                    _exit(4);
                CHECK(!"envelope key_id equals its ciphertext's prefix");
            }
            pthread_mutex_lock(&a->mu);
            fprintf(a->out, "W %" PRIu32 " ", id);
            put_hex(a->out, aad, sizeof aad);
            fputc(' ', a->out);
            put_hex(a->out, dek, sizeof dek);
            fputc(' ', a->out);
            put_hex(a->out, c, n);
            fprintf(a->out, " %" PRIu32 "\n", env.key_version);
            fflush(a->out);
            pthread_mutex_unlock(&a->mu);
            ks_envelope_clear(&env);
        }
        if (st != KS_OK) {
            if (in_child)
                die("wrap_key", st);
            OK(st);
        }
        return id;
    }
    }
    if (st != KS_OK) {
        if (in_child)
            die(which % 3 ? "encrypt" : "seal", st);
        OK(st);
        return 0;
    }
    put_hex(a->out, aad, sizeof aad);
    fputc(' ', a->out);
    put_hex(a->out, pt, sizeof pt);
    fputc(' ', a->out);
    put_hex(a->out, ct.data, ct.len);
    fputc('\n', a->out);
    fflush(a->out);
    pthread_mutex_unlock(&a->mu);
    ks_buffer_free(&ct);
    return id;
}

static uint64_t actor_subscribe(actor_t *a, const ks_keychain *kc)
{
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, on_event, a, &sub, E));
    return sub;
}

/* ------------------------------------------------------------------ */
/* Verification: everything recorded, against a fresh handle           */
/* ------------------------------------------------------------------ */

typedef struct {
    uint32_t key_id;
    uint64_t n; /* ciphertexts under it */
} tally_t;

typedef struct {
    size_t records, ciphertexts, rotations, auto_rotations, keys, max_per_key;
} verdict_t;

static tally_t *tally_find(tally_t **t, size_t *n, uint32_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*t)[i].key_id == id)
            return &(*t)[i];
    tally_t *nt = realloc(*t, (*n + 1) * sizeof **t);
    if (!nt)
        abort();
    *t = nt;
    nt[*n].key_id = id;
    nt[*n].n = 0;
    return &nt[(*n)++];
}

static const ks_key_info *find_key(const ks_key_info *keys, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].key_id == id)
            return &keys[i];
    return NULL;
}

/* Checks one record line against `kc`; tallies ciphertexts and rotations. */
static void verify_line(const ks_keychain *kc, const ks_key_info *keys, size_t nkeys, char *line, tally_t **tally,
                        size_t *ntally, verdict_t *v, const char *file)
{
    char *save = NULL;
    char *f[7] = {0};
    int nf = 0;
    for (char *tok = strtok_r(line, " \n", &save); tok && nf < 7; tok = strtok_r(NULL, " \n", &save))
        f[nf++] = tok;
    if (nf == 0)
        return;
    v->records++;
    uint32_t id = (uint32_t)strtoul(f[1] ? f[1] : "0", NULL, 10);
    if (f[0][0] == 'R' && nf == 4) {
        v->rotations++;
        if (strcmp(f[3], "1") == 0)
            v->auto_rotations++;
        if (!CHECK(find_key(keys, nkeys, id) != NULL))
            fprintf(stderr, "  rotation to key %" PRIu32 " (%s) is not in the keychain\n", id, file);
        return;
    }
    bytes_t aad, pt, ct;
    if (!CHECK((f[0][0] == 'S' || f[0][0] == 'E' || f[0][0] == 'W') && nf >= 5 && unhex(f[2], &aad))) {
        fprintf(stderr, "  malformed record in %s\n", file);
        return;
    }
    unhex(f[3], &pt);
    unhex(f[4], &ct);
    ks_buffer got = {0};
    ks_status st;
    uint32_t ct_id = 0;
    if (f[0][0] == 'S') {
        st = ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &got, E);
        ct_id = ct.n >= 5 ? be32(ct.p + 1) : 0;
    } else if (f[0][0] == 'E') {
        st = ks_keychain_decrypt(kc, ct.p, ct.n, aad.p, aad.n, &got, E);
        ct_id = ct.n >= 9 ? be32(ct.p + 5) : 0;
    } else {
        /* The recorded fields in an envelope of our own (only read by the call). */
        ks_envelope env = {f[1], nf > 5 ? (uint32_t)strtoul(f[5], NULL, 10) : 0, "keystrata", ct.p, ct.n};
        st = ks_keychain_unwrap_key(kc, &env, aad.p, aad.n, &got, E);
        ct_id = ct.n >= 5 ? be32(ct.p + 1) : 0;
    }
    v->ciphertexts++;
    bool ok = st == KS_OK && got.len == pt.n && (pt.n == 0 || memcmp(got.data, pt.p, pt.n) == 0) && ct_id == id;
    if (!CHECK(ok))
        fprintf(stderr, "  LOST: %c ciphertext under key %" PRIu32 " from %s: %s %s\n", f[0][0], id, file,
                ks_status_name((int)st), st == KS_OK ? "(wrong plaintext or key_id)" : last_msg());
    tally_find(tally, ntally, id)->n++;
    ks_buffer_free(&got);
    free(aad.p);
    free(pt.p);
    free(ct.p);
}

/*
 * Loads `path` afresh and checks every *.rec file in `dir` against it.
 * `max` is the policy's maximum per key (0: do not check).
 */
static verdict_t verify_dir(const char *dir, const char *path, const ks_root *root, uint64_t max)
{
    verdict_t v = {0};
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_load_file(path, root, &kc, E)))
        return v;
    size_t nkeys = 0;
    ks_keychain_keys(kc, NULL, 0, &nkeys, E);
    ks_key_info *keys = calloc(nkeys + 1, sizeof *keys);
    OK(ks_keychain_keys(kc, keys, nkeys, &nkeys, E));
    v.keys = nkeys;
    tally_t *tally = NULL;
    size_t ntally = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    char *line = NULL;
    size_t cap = 0;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".rec") != 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "r");
        if (!CHECK(f != NULL))
            continue;
        while (getline(&line, &cap, f) > 0)
            verify_line(kc, keys, nkeys, line, &tally, &ntally, &v, e->d_name);
        fclose(f);
    }
    if (d)
        closedir(d);
    free(line);

    /* Keys created = the two of the new keychain + every rotation reported. */
    size_t enc = 0, der = 0;
    for (size_t i = 0; i < nkeys; i++) {
        if (keys[i].purpose == KS_PURPOSE_ENCRYPT)
            enc++;
        else if (keys[i].purpose == KS_PURPOSE_DERIVE)
            der++;
    }
    if (!CHECK(enc == 1 + v.rotations && der == 1))
        fprintf(stderr, "  %zu encryption keys and %zu derivation keys in the file; %zu rotations reported\n", enc,
                der, v.rotations);
    for (size_t i = 0; i < ntally; i++) {
        const ks_key_info *k = find_key(keys, nkeys, tally[i].key_id);
        if (tally[i].n > v.max_per_key)
            v.max_per_key = tally[i].n;
        if (!CHECK(k != NULL)) {
            fprintf(stderr, "  key %" PRIu32 " of %" PRIu64 " ciphertexts is not in the file\n", tally[i].key_id,
                    tally[i].n);
            continue;
        }
        if (!CHECK(k->usage >= tally[i].n))
            fprintf(stderr, "  key %" PRIu32 " records usage %" PRIu64 " < %" PRIu64 " ciphertexts\n", k->key_id,
                    k->usage, tally[i].n);
        if (max && !CHECK(tally[i].n <= max))
            fprintf(stderr, "  key %" PRIu32 " (v%" PRIu32 "): %" PRIu64 " ciphertexts, over the limit of %" PRIu64
                    ": a usage count was owned twice\n",
                    k->key_id, k->version, tally[i].n, max);
    }
    free(tally);
    free(keys);
    ks_keychain_free(kc);
    return v;
}

static void verdict_text(char *out, size_t cap, verdict_t v)
{
    snprintf(out, cap, "(%zu ciphertexts, %zu keys, %zu rotations of which %zu automatic, at most %zu per key)",
             v.ciphertexts, v.keys, v.rotations, v.auto_rotations, v.max_per_key);
}

/* ------------------------------------------------------------------ */
/* Two handles in one process                                          */
/* ------------------------------------------------------------------ */

typedef struct {
    ks_keychain *kc;
    actor_t *a;
    int ops, rotate_every;
} both_arg;

static void *both_worker(void *p)
{
    both_arg *b = p;
    for (int i = 0; i < b->ops; i++) {
        if (i % b->rotate_every == b->rotate_every - 1)
            OK(ks_keychain_rotate(b->kc, NULL, E));
        actor_op(b->a, b->kc, (unsigned)i, false);
    }
    return NULL;
}

static void group_two_handles(const ks_root *root)
{
    group_begin("two handles");
    char dir[300], path[400], text[200];
    subdir(dir, sizeof dir, "two-handles");
    snprintf(path, sizeof path, "%s/keychain.age", dir);
    ks_policy pol = small_policy(1ull << 32, 4);
    ks_keychain *h1 = NULL, *h2 = NULL;
    if (!OK(ks_keychain_open(path, root, &pol, &h1, E)) || !OK(ks_keychain_open(path, root, &pol, &h2, E))) {
        ks_keychain_free(h1);
        group_end("");
        return;
    }
    actor_t a1, a2;
    actor_open(&a1, dir, "h1", 1);
    actor_open(&a2, dir, "h2", 2);
    actor_subscribe(&a1, h1);
    actor_subscribe(&a2, h2);

    /* h1 rotates; h2 (which has not reloaded) keeps sealing, encrypting
     * and wrapping, and its new usage blocks must not overwrite the
     * rotation. */
    unsigned op = 0;
    for (int r = 0; r < 12; r++) {
        ks_key_info k1;
        OK(ks_keychain_rotate(h1, &k1, E));
        for (int i = 0; i < 10; i++)
            actor_op(&a2, h2, op++, false);
        actor_op(&a1, h1, op++, false);
    }
    /* h2 uses h1's newest primary: at once, since its next block
     * reservation reads the latest state; polled with a deadline. */
    ks_key_info p1;
    OK(ks_keychain_primary(h1, KS_PURPOSE_ENCRYPT, &p1, E));
    uint32_t seen = 0;
    double deadline = now_s() + 60;
    while (seen != p1.key_id && now_s() < deadline)
        seen = actor_op(&a2, h2, op++, false);
    CHECK(seen == p1.key_id);

    /* Both rotate and encrypt from two threads at once. */
    both_arg b1 = {h1, &a1, 120, 15}, b2 = {h2, &a2, 120, 20};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, both_worker, &b1);
    pthread_create(&t2, NULL, both_worker, &b2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);

    /* Each handle lists the other's keys after a reload (an unknown key in
     * a ciphertext reloads): seal under h2, unseal under h1. */
    ks_buffer ct = {0}, pt = {0};
    OK(ks_keychain_seal(h2, (const uint8_t *)"x", 1, NULL, 0, &ct, E));
    OK(ks_keychain_unseal(h1, ct.data, ct.len, NULL, 0, &pt, E));
    ks_buffer_free(&ct);
    ks_buffer_free(&pt);

    actor_close(&a1);
    actor_close(&a2);
    ks_keychain_free(h1);
    ks_keychain_free(h2);
    verdict_t v = verify_dir(dir, path, root, 0);
    CHECK(v.rotations == 12 + 120 / 15 + 120 / 20);
    CHECK(v.ciphertexts > 300);
    verdict_text(text, sizeof text, v);
    group_end(text);
}

/* ------------------------------------------------------------------ */
/* Parent and forked children                                          */
/* ------------------------------------------------------------------ */

enum { FORK_OPS = 160, FORK_MAX = 40, FORK_BLOCK = 4, FORK_CHILDREN = 3 };

/* Waits for `pid` at most until `deadline`; kills it after that. Returns
 * true if it exited with status 0. */
static bool reap(pid_t pid, double deadline)
{
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (w < 0)
            return false;
        if (now_s() > deadline) {
            fprintf(stderr, "  process %d did not finish in time; killed\n", (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return false;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/*
 * The loop of every process in the fork group: FORK_OPS operations on the
 * shared handle, one manual rotation at op `rotate_at`. Child 0 forks a
 * grandchild halfway (mid-block), which runs the same loop.
 */
static void fork_loop(actor_t *a, ks_keychain *kc, const char *dir, int rotate_at, bool child, bool may_fork,
                      pid_t *grandchild)
{
    for (int i = 0; i < FORK_OPS; i++) {
        if (i == rotate_at) {
            ks_status st = ks_keychain_rotate(kc, NULL, E);
            if (child && st != KS_OK)
                die("rotate", st);
            if (!child)
                OK(st);
        }
        if (may_fork && i == FORK_OPS / 2) {
            fflush(NULL);
            pid_t g = fork();
            if (g == 0) {
                actor_reopen_in_child(a, dir, "grandchild", 9);
                fork_loop(a, kc, dir, 17, true, false, NULL);
                fclose(a->out);
                _exit(0);
            }
            *grandchild = g;
        }
        uint32_t id = actor_op(a, kc, (unsigned)i, child);
        if (child && id == 0)
            _exit(5);
    }
}

static void group_fork(const ks_root *root)
{
    group_begin("fork");
    char dir[300], path[400], text[200];
    subdir(dir, sizeof dir, "fork");
    snprintf(path, sizeof path, "%s/keychain.age", dir);
    ks_policy pol = small_policy(FORK_MAX, FORK_BLOCK);
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_open(path, root, &pol, &kc, E))) {
        group_end("");
        return;
    }
    actor_t a;
    actor_open(&a, dir, "parent", 0);
    actor_subscribe(&a, kc);
    /* The parent holds a partly used block of every key it forks with. */
    pid_t kids[FORK_CHILDREN + 1];
    int nkids = 0;
    unsigned op = 0;
    for (int c = 0; c < FORK_CHILDREN; c++) {
        for (int i = 0; i < 2 + 5 * c; i++)
            actor_op(&a, kc, op++, false);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            CHECK(!"fork");
            break;
        }
        if (pid == 0) {
            char name[32];
            snprintf(name, sizeof name, "child%d", c);
            actor_reopen_in_child(&a, dir, name, 10 + c);
            pid_t g = -1;
            fork_loop(&a, kc, dir, 50 + 20 * c, true, c == 0, &g);
            fclose(a.out);
            bool ok = g < 0 || reap(g, now_s() + 120);
            _exit(ok ? 0 : 6);
        }
        kids[nkids++] = pid;
    }
    fork_loop(&a, kc, dir, 100, false, false, NULL);
    double deadline = now_s() + 180;
    for (int i = 0; i < nkids; i++)
        CHECK(reap(kids[i], deadline));
    actor_close(&a);
    ks_keychain_free(kc);

    verdict_t v = verify_dir(dir, path, root, FORK_MAX);
    /* 5 processes: 4 manual rotations ... */
    size_t made = (size_t)(FORK_CHILDREN + 2) * FORK_OPS + 2 + 7 + 12;
    CHECK(v.ciphertexts == made);
    CHECK(v.rotations - v.auto_rotations == FORK_CHILDREN + 2);
    /* ... and the limit must have made several keys by itself. */
    CHECK(v.auto_rotations >= made / FORK_MAX / 2);
    verdict_text(text, sizeof text, v);
    group_end(text);
}

/* ------------------------------------------------------------------ */
/* An encrypt-only process while another rotates                       */
/* ------------------------------------------------------------------ */

/* The encrypt-only child: its own handle, large blocks (it never writes
 * after the first), encrypts until `ctl` reaches EOF, each record also a
 * line on `out_fd`. Bounded: 200000 operations or 120 s. */
static void encrypt_only_child(const char *path, const ks_root *root, const char *dir, int ctl, int out_fd)
{
    ks_keychain *kc = NULL;
    ks_status st = ks_keychain_open(path, root, NULL, &kc, E);
    if (st != KS_OK)
        die("open", st);
    actor_t a;
    actor_reopen_in_child(&a, dir, "encrypt-only", 20);
    pthread_mutex_init(&a.mu, NULL);
    a.seq = 0;
    FILE *pipe_out = fdopen(out_fd, "w");
    if (!pipe_out)
        _exit(2);
    double end = now_s() + 120;
    for (unsigned i = 0; i < 200000 && now_s() < end; i++) {
        struct pollfd pf = {ctl, POLLIN, 0};
        if (poll(&pf, 1, 0) > 0)
            break; /* EOF (or anything) on the control pipe: stop */
        uint32_t id = actor_op(&a, kc, i % 2, true);
        fprintf(pipe_out, "%" PRIu32 "\n", id);
        fflush(pipe_out);
        /* Pace the child a little so its record file stays small. */
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fclose(a.out);
    fclose(pipe_out);
    _exit(0);
}

/* Reads the key_ids the child reports until one is `want` or `deadline`. */
static bool wait_for_key(int fd, uint32_t want, double deadline, char *buf, size_t *have, size_t cap)
{
    while (now_s() < deadline) {
        /* Whole lines already buffered first. */
        char *nl;
        while ((nl = memchr(buf, '\n', *have)) != NULL) {
            *nl = '\0';
            uint32_t id = (uint32_t)strtoul(buf, NULL, 10);
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, *have - used);
            *have -= used;
            if (id == want)
                return true;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 200) > 0) {
            ssize_t n = read(fd, buf + *have, cap - *have);
            if (n <= 0)
                return false; /* the child ended */
            *have += (size_t)n;
        }
    }
    return false;
}

static void group_encrypt_only(const ks_root *root)
{
    group_begin("encrypt-only");
    char dir[300], path[400], text[300];
    subdir(dir, sizeof dir, "encrypt-only");
    snprintf(path, sizeof path, "%s/keychain.age", dir);
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_open(path, root, NULL, &kc, E))) {
        group_end("");
        return;
    }
    actor_t a;
    actor_open(&a, dir, "rotator", 1);
    actor_subscribe(&a, kc);
    int ctl[2], out[2];
    if (pipe(ctl) != 0 || pipe(out) != 0) {
        CHECK(!"pipe");
        group_end("");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[1]);
        close(out[0]);
        encrypt_only_child(path, root, dir, ctl[0], out[1]);
    }
    close(ctl[0]);
    close(out[1]);
    char buf[4096];
    size_t have = 0;
    ks_key_info first;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &first, E));
    bool ok = CHECK(wait_for_key(out[0], first.key_id, now_s() + 60, buf, &have, sizeof buf));
    double worst = 0;
    for (int r = 0; r < 3 && ok; r++) {
        ks_key_info k;
        OK(ks_keychain_rotate(kc, &k, E));
        actor_op(&a, kc, (unsigned)r, false);
        double t0 = now_s();
        ok = CHECK(wait_for_key(out[0], k.key_id, t0 + 60, buf, &have, sizeof buf));
        if (now_s() - t0 > worst)
            worst = now_s() - t0;
    }
    close(ctl[1]); /* stop the child */
    while (read(out[0], buf, sizeof buf) > 0) {
    }
    close(out[0]);
    CHECK(reap(pid, now_s() + 60));
    actor_close(&a);
    ks_keychain_free(kc);
    verdict_t v = verify_dir(dir, path, root, 0);
    CHECK(v.rotations == 3 && v.auto_rotations == 0);
    char vt[200];
    verdict_text(vt, sizeof vt, v);
    snprintf(text, sizeof text, "%s, adopted each new primary within %.2f s", vt, worst);
    group_end(text);
}

int main(void)
{
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/ks-c-shared-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    printf("keystrata %s C tests of shared keychains\n", ks_version());
    fflush(stdout);
    ks_root *root = NULL;
    if (OK(ks_root_age_generate(&root, E))) {
        group_two_handles(root);
        group_fork(root);
        group_encrypt_only(root);
    }
    ks_root_free(root);
    if (!getenv("KS_TEST_KEEP"))
        rm_tree(g_tmpdir);
    else
        printf("kept %s\n", g_tmpdir);
    int pass = atomic_load(&g_pass), fail = atomic_load(&g_fail);
    printf("c-shared: %d passed, %d failed\n", pass, fail);
    return fail == 0 ? 0 : 1;
}
