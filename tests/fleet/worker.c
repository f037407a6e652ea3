/*
 * The fleet test's worker in C (tests/fleet/README.md has the interface,
 * shared with worker.py and go/main.go).
 *
 *   fleet-c run LOCATION IDENTITY_FILE NAME SEED SECONDS MAX_OPS ROTATE_PERMILLE MAX_PER_KEY BLOCK
 *   fleet-c check LOCATION IDENTITY_FILE RECORDS_FILE
 *
 * It stops at SECONDS, at MAX_OPS, or as soon as the file named by the
 * environment variable KS_FLEET_STOP_FILE exists (checked every 16 ops);
 * KS_FLEET_RATE, if set, caps its operations per second.
 *
 * Every output line is written whole with one write and flushed, so a
 * worker killed at any moment leaves only complete lines (and at most one
 * cut short, without its newline).
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystrata.h"

/* The error of the last call that passes &err; take_msg frees it. */
static ks_error *err;

/* The message of the last failed call (a copy), freeing its error object. */
static const char *take_msg(void)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s", ks_error_message(err));
    ks_error_free(err);
    err = NULL;
    return buf;
}

static const char *kind_name(ks_status st)
{
    static const char *names[] = {"Ok",          "InvalidInput", "Authentication", "UnknownKey", "KeyDisabled",
                                  "KeyDestroyed", "Policy",       "Unsupported",    "Backend",    "Unavailable",
                                  "Format",       "Io",           "Internal"};
    if ((int)st >= 0 && (int)st <= 12)
        return names[st];
    return ks_status_name((int)st);
}

static void usage(const char *why)
{
    fprintf(stderr, "fleet-c: %s\n", why);
    exit(2);
}

/* One whole line to stdout, flushed. */
static void emit(const char *line)
{
    size_t n = strlen(line);
    fwrite(line, 1, n, stdout);
    fflush(stdout);
}

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

static char *hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes into a malloc'd buffer; false on bad hex. */
static bool unhex(const char *s, uint8_t **out, size_t *n)
{
    size_t l = strlen(s);
    *out = NULL;
    *n = 0;
    if (l % 2)
        return false;
    uint8_t *b = malloc(l / 2 + 1);
    if (!b)
        return false;
    for (size_t i = 0; i < l / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i] = (uint8_t)(hi * 16 + lo);
    }
    *out = b;
    *n = l / 2;
    return true;
}

static ks_root *root_from(const char *identity_file)
{
    FILE *f = fopen(identity_file, "r");
    if (!f)
        usage("cannot read the identity file");
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *ids[1] = {text};
    ks_root *r = NULL;
    if (ks_root_age_new(ids, 1, NULL, 0, &r, &err) != KS_OK)
        usage("bad identity");
    return r;
}

static uint64_t g_rng;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void on_event(const ks_event *e, void *user)
{
    (void)user;
    if (e->kind != KS_EVENT_KEY_ROTATED || e->purpose != KS_PURPOSE_ENCRYPT)
        return;
    char line[96];
    snprintf(line, sizeof line, "R %" PRIu32 " %" PRIu32 " %s\n", e->key_id, e->key_version,
             e->automatic ? "auto" : "manual");
    emit(line);
}

static int run(char **a)
{
    const char *location = a[0], *name = a[2];
    g_rng = strtoull(a[3], NULL, 10) | 1;
    double seconds = atof(a[4]);
    long max_ops = atol(a[5]);
    long rotate_permille = atol(a[6]);
    ks_policy pol = ks_policy_default();
    pol.max_encryptions_per_key = strtoull(a[7], NULL, 10);
    pol.usage_block = strtoull(a[8], NULL, 10);
    ks_root *root = root_from(a[1]);
    ks_keychain *kc = NULL;
    ks_status st = ks_keychain_open(location, root, &pol, &kc, &err);
    if (st != KS_OK) {
        char line[256];
        snprintf(line, sizeof line, "X %s open\n", kind_name(st));
        emit(line);
        fprintf(stderr, "fleet-c %s: open: %s\n", name, take_msg());
        ks_root_free(root);
        return 3;
    }
    uint64_t sub = 0;
    ks_keychain_subscribe(kc, on_event, NULL, &sub, NULL);
    emit("READY\n");
    double end = now_s() + seconds;
    const char *stop_file = getenv("KS_FLEET_STOP_FILE");
    const char *rate_env = getenv("KS_FLEET_RATE");
    double rate = rate_env ? atof(rate_env) : 0, next = now_s();
    long ops = 0, errors = 0;
    char line[1024], h1[256], h2[256], h3[512];
    for (long i = 0; i < max_ops && now_s() < end; i++) {
        if (stop_file && i % 16 == 0 && access(stop_file, F_OK) == 0)
            break; /* the harness ends the run */
        if (rate > 0) { /* pacing: at most `rate` operations a second */
            double t = now_s();
            if (t < next) {
                struct timespec ts = {(time_t)(next - t), (long)((next - t - (double)(time_t)(next - t)) * 1e9)};
                nanosleep(&ts, NULL);
            }
            next = (t > next ? t : next) + 1.0 / rate;
        }
        if ((long)(rnd() % 1000) < rotate_permille) {
            st = ks_keychain_rotate(kc, NULL, &err);
            if (st != KS_OK) {
                fprintf(stderr, "fleet-c %s: rotate: %s: %s\n", name, kind_name(st), take_msg());
                snprintf(line, sizeof line, "X %s rotate\n", kind_name(st));
                emit(line);
                errors++;
            }
        }
        char pt[64], aad[64];
        int ptn = snprintf(pt, sizeof pt, "fleet/%s/%ld", name, i);
        int aadn = snprintf(aad, sizeof aad, "aad/%s/%ld", name, i);
        unsigned which = (unsigned)(rnd() % 3);
        ks_buffer ct = {0};
        const char *op = which == 0 ? "seal" : which == 1 ? "encrypt" : "wrap";
        if (which == 0) {
            st = ks_keychain_seal(kc, (const uint8_t *)pt, (size_t)ptn, (const uint8_t *)aad, (size_t)aadn, &ct, &err);
            if (st == KS_OK)
                snprintf(line, sizeof line, "S %" PRIu32 " %s %s %s\n", be32(ct.data + 1),
                         hex(h1, (const uint8_t *)aad, (size_t)aadn), hex(h2, (const uint8_t *)pt, (size_t)ptn),
                         hex(h3, ct.data, ct.len));
        } else if (which == 1) {
            st = ks_keychain_encrypt(kc, (const uint8_t *)pt, (size_t)ptn, (const uint8_t *)aad, (size_t)aadn, &ct, &err);
            if (st == KS_OK)
                snprintf(line, sizeof line, "E %" PRIu32 " %s %s %s\n", be32(ct.data + 5),
                         hex(h1, (const uint8_t *)aad, (size_t)aadn), hex(h2, (const uint8_t *)pt, (size_t)ptn),
                         hex(h3, ct.data, ct.len));
        } else {
            uint8_t dek[32] = {0};
            memcpy(dek, pt, (size_t)ptn < sizeof dek ? (size_t)ptn : sizeof dek);
            ks_envelope env;
            st = ks_keychain_wrap_key(kc, dek, sizeof dek, (const uint8_t *)aad, (size_t)aadn, &env, &err);
            if (st == KS_OK) {
                snprintf(line, sizeof line, "W %s %" PRIu32 " %s %s %s\n", env.key_id, env.key_version,
                         hex(h1, (const uint8_t *)aad, (size_t)aadn), hex(h2, dek, sizeof dek),
                         hex(h3, env.ciphertext, env.ciphertext_len));
                ks_envelope_clear(&env);
            }
        }
        if (st != KS_OK)
            fprintf(stderr, "fleet-c %s: %s: %s: %s\n", name, op, kind_name(st), take_msg());
        ks_buffer_free(&ct);
        if (st != KS_OK) {
            snprintf(line, sizeof line, "X %s %s\n", kind_name(st), op);
            errors++;
            if (errors > 1000) {
                emit(line);
                return 4;
            }
        } else {
            ops++;
        }
        emit(line);
    }
    snprintf(line, sizeof line, "DONE %ld %ld\n", ops, errors);
    emit(line);
    ks_keychain_free(kc);
    ks_root_free(root);
    return 0;
}

static int check(char **a)
{
    ks_root *root = root_from(a[1]);
    ks_keychain *kc = NULL;
    ks_status st = ks_keychain_open(a[0], root, NULL, &kc, &err);
    if (st != KS_OK) {
        fprintf(stderr, "fleet-c check: open: %s: %s\n", kind_name(st), take_msg());
        return 2;
    }
    FILE *f = fopen(a[2], "r");
    if (!f)
        usage("cannot read the records");
    char *line = NULL;
    size_t cap = 0;
    long n = 0, failed = 0, lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        char *save = NULL, *fld[7] = {0};
        int nf = 0;
        for (char *t = strtok_r(line, " \n", &save); t && nf < 7; t = strtok_r(NULL, " \n", &save))
            fld[nf++] = t;
        if (nf == 0)
            continue;
        char kind = fld[0][0];
        uint8_t *aad = NULL, *pt = NULL, *ct = NULL;
        size_t aadn = 0, ptn = 0, ctn = 0;
        bool parsed = false;
        if ((kind == 'S' || kind == 'E') && nf == 5)
            parsed = unhex(fld[2], &aad, &aadn) && unhex(fld[3], &pt, &ptn) && unhex(fld[4], &ct, &ctn);
        else if (kind == 'W' && nf == 6)
            parsed = unhex(fld[3], &aad, &aadn) && unhex(fld[4], &pt, &ptn) && unhex(fld[5], &ct, &ctn);
        else
            continue;
        n++;
        ks_buffer got = {0};
        if (!parsed) {
            st = KS_ERR_FORMAT;
        } else if (kind == 'S') {
            st = ks_keychain_unseal(kc, ct, ctn, aad, aadn, &got, NULL);
        } else if (kind == 'E') {
            st = ks_keychain_decrypt(kc, ct, ctn, aad, aadn, &got, NULL);
        } else {
            /* The envelope's fields as recorded; the struct is ours, only read by the call. */
            ks_envelope env = {fld[1], (uint32_t)strtoul(fld[2], NULL, 10), "keystrata", ct, ctn};
            st = ks_keychain_unwrap_key(kc, &env, aad, aadn, &got, NULL);
        }
        bool ok = st == KS_OK && got.len == ptn && (ptn == 0 || memcmp(got.data, pt, ptn) == 0);
        if (!ok) {
            failed++;
            if (failed <= 20)
                printf("BAD %ld %s %c %s\n", lineno, st == KS_OK ? "WrongPlaintext" : kind_name(st), kind, fld[1]);
        }
        ks_buffer_free(&got);
        free(aad);
        free(pt);
        free(ct);
    }
    free(line);
    fclose(f);
    size_t count = 0;
    ks_keychain_keys(kc, NULL, 0, &count, NULL); /* out NULL: the count alone */
    ks_key_info *keys = calloc(count + 1, sizeof *keys);
    if (keys && ks_keychain_keys(kc, keys, count, &count, NULL) == KS_OK) {
        for (size_t i = 0; i < count; i++)
            printf("K %" PRIu32 " %" PRIu32 " %s %s %" PRIu64 " %d\n", keys[i].key_id, keys[i].version,
                   keys[i].purpose == KS_PURPOSE_ENCRYPT ? "encrypt" : "derive",
                   keys[i].status == KS_KEY_ENABLED    ? "enabled"
                   : keys[i].status == KS_KEY_DISABLED ? "disabled"
                                                       : "destroyed",
                   keys[i].usage, keys[i].primary ? 1 : 0);
    }
    free(keys);
    printf("checked %ld failed %ld\n", n, failed);
    ks_keychain_free(kc);
    ks_root_free(root);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 11 && strcmp(argv[1], "run") == 0)
        return run(argv + 2);
    if (argc == 5 && strcmp(argv[1], "check") == 0)
        return check(argv + 2);
    usage("usage: fleet-c run LOCATION IDENTITY NAME SEED SECONDS MAX_OPS ROTATE_PERMILLE MAX BLOCK | check "
          "LOCATION IDENTITY RECORDS");
    return 2;
}
