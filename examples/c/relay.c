/*
 * The cross-language story, C's parts (run by `make demo`):
 *
 *   relay gen DIR      generate an age identity and a keychain, save both in DIR
 *   relay derive DIR   load DIR's keychain, derive the demo origin key, and
 *                      check it equals the one Go derived (DIR/origin.go.hex)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystrata.h"

/* The error of the last call: every ks_ call below takes &err, and the
 * library sets it to NULL on success or to an error object on failure. */
static ks_error *err;

static void check(ks_status st, const char *step)
{
    if (st != KS_OK) {
        fprintf(stderr, "relay (C): %s failed: %s: %s\n", step, ks_status_name((int)st), ks_error_message(err));
        ks_error_free(err);
        exit(1);
    }
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                fprintf(stderr, "relay (C): out of memory\n");
                exit(1);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
        fprintf(stderr, "relay (C): path too long\n");
        exit(1);
    }
}

static ks_root *load_root(const char *dir)
{
    char p[4096];
    size_t n = 0;
    path_in(p, sizeof p, dir, "identity.txt");
    char *text = read_file(p, &n);
    const char *ids[1] = {text};
    ks_root *root = NULL;
    check(ks_root_age_new(ids, 1, NULL, 0, &root, &err), "read the age identity");
    memset(text, 0, n); /* the identity is a secret */
    free(text);
    return root;
}

static int gen(const char *dir)
{
    ks_root *root = NULL;
    check(ks_root_age_generate(&root, &err), "generate an age identity");
    ks_buffer id = {NULL, 0}, rcpt = {NULL, 0};
    check(ks_root_age_identity(root, 0, &id, &err), "read the identity");
    check(ks_root_age_recipient(root, 0, &rcpt, &err), "read the recipient");
    char p[4096];
    path_in(p, sizeof p, dir, "identity.txt");
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        return 1;
    }
    fprintf(f, "# public key: %.*s\n%.*s\n", (int)rcpt.len, (const char *)rcpt.data, (int)id.len,
            (const char *)id.data);
    fclose(f);
    ks_buffer_free(&id);

    ks_keychain *kc = NULL;
    check(ks_keychain_generate(NULL, &kc, &err), "generate a keychain");
    path_in(p, sizeof p, dir, "keychain.age");
    check(ks_keychain_save_file(kc, p, root, &err), "save the keychain");
    ks_key_info primary;
    check(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &primary, &err), "read the primary");
    printf("1. [C]      generated an age identity (%.*s…) and a keychain (primary key %u v%u), saved to %s\n", 12,
           (const char *)rcpt.data, primary.key_id, primary.version, p);
    ks_buffer_free(&rcpt);
    ks_keychain_free(kc);
    ks_root_free(root);
    return 0;
}

static int derive(const char *dir)
{
    ks_root *root = load_root(dir);
    char p[4096];
    path_in(p, sizeof p, dir, "keychain.age");
    ks_keychain *kc = NULL;
    check(ks_keychain_load_file(p, root, &kc, &err), "load the keychain");
    const char *origin = "https://app.example", *instance = "web-1";
    ks_buffer key = {NULL, 0};
    check(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)origin, strlen(origin), (const uint8_t *)instance,
                                        strlen(instance), 0, &key, &err),
          "derive the origin key");
    char hex[65];
    for (size_t i = 0; i < key.len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key.data[i]);
    hex[64] = '\0';
    ks_buffer_free(&key);
    path_in(p, sizeof p, dir, "origin.go.hex");
    size_t n = 0;
    char *go = read_file(p, &n);
    int same = n >= 64 && memcmp(go, hex, 64) == 0;
    free(go);
    printf("5. [C]      derived the same origin key as Go: %s (%s)\n", same ? "yes" : "NO", hex);
    ks_keychain_free(kc);
    ks_root_free(root);
    return same ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2]);
    if (argc == 3 && strcmp(argv[1], "derive") == 0)
        return derive(argv[2]);
    fprintf(stderr, "usage: %s gen DIR | derive DIR\n", argv[0]);
    return 2;
}
