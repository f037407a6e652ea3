/*
 * keystrata from C: a keychain under an age root, saved to a file and
 * loaded back, then seal, encrypt, wrap, derive and rotate.
 *
 *   make c-demo
 *
 * Every fallible ks_ call returns a ks_status and takes a last argument
 * `ks_error **err` (NULL to ignore): on failure *err is an error object
 * with the status and a message saying why, which the caller frees with
 * ks_error_free; on success *err is NULL. Errors belong to the call, not to
 * the thread. Library-allocated bytes come back in a ks_buffer and are
 * released with ks_buffer_free, which also wipes them.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keystrata.h"

/* The error of the last call: every ks_ call below takes &err. */
static ks_error *err;

/* Checks a status: on failure, prints the step and the message and exits. */
static void check(ks_status st, const char *step)
{
    if (st != KS_OK) {
        fprintf(stderr, "demo: %s failed: %s: %s\n", step, ks_status_name((int)st), ks_error_message(err));
        ks_error_free(err);
        exit(1);
    }
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

int main(void)
{
    printf("keystrata %s\n", ks_version());

    /* 1. An age root: what protects the keychain at rest. In production,
     *    store its identity (ks_root_age_identity) somewhere safe. */
    ks_root *root = NULL;
    check(ks_root_age_generate(&root, &err), "generate an age root");
    ks_buffer recipient = {NULL, 0};
    check(ks_root_age_recipient(root, 0, &recipient, &err), "read the recipient");
    printf("1. age root generated, recipient %.*s\n", (int)recipient.len, (const char *)recipient.data);
    ks_buffer_free(&recipient);

    /* 2. A keychain: one encryption key and one derivation key. NULL = default policy. */
    ks_keychain *generated = NULL;
    check(ks_keychain_generate(NULL, &generated, &err), "generate a keychain");
    size_t n_keys = 0;
    check(ks_keychain_key_count(generated, &n_keys, &err), "count keys");
    printf("2. keychain generated with %zu keys\n", n_keys);

    /* 3. Save it to a file (atomically) under a temporary directory, encrypted to the root. */
    char dir[] = "/tmp/keystrata-demo-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("demo: mkdtemp");
        return 1;
    }
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/keychain.age", dir);
    check(ks_keychain_save_file(generated, path, root, &err), "save the keychain");
    ks_keychain_free(generated); /* wipes its key material */
    printf("3. saved to %s\n", path);

    /* 4. Load it back with the same root. */
    ks_keychain *kc = NULL;
    check(ks_keychain_load_file(path, root, &kc, &err), "load the keychain");
    ks_key_info primary;
    check(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &primary, &err), "read the primary");
    printf("4. loaded; encryption primary is key %u (version %u)\n", primary.key_id, primary.version);

    /* 5. Seal a small secret, bound to associated data (aad). */
    const char *secret = "db-password-42";
    const char *aad = "service=billing";
    ks_buffer sealed = {NULL, 0};
    check(ks_keychain_seal(kc, (const uint8_t *)secret, strlen(secret), (const uint8_t *)aad, strlen(aad), &sealed, &err),
          "seal");
    printf("5. sealed %zu-byte secret into %zu bytes (Tink AEAD format)\n", strlen(secret), sealed.len);

    /* 6. Envelope-encrypt a document: a fresh data key, wrapped by the primary. */
    const char *doc = "Quarterly report: all numbers are up.";
    ks_buffer encrypted = {NULL, 0};
    check(ks_keychain_encrypt(kc, (const uint8_t *)doc, strlen(doc), NULL, 0, &encrypted, &err), "encrypt");
    printf("6. encrypted a %zu-byte document into %zu bytes\n", strlen(doc), encrypted.len);

    /* 7. Wrap your own data key, e.g. for object storage; print its metadata form. */
    uint8_t data_key[32];
    for (size_t i = 0; i < sizeof data_key; i++)
        data_key[i] = (uint8_t)i;
    const char *object = "bucket/reports/q3.pdf";
    ks_envelope envelope; /* a plain struct the library fills; ks_envelope_clear releases its fields */
    check(ks_keychain_wrap_key(kc, data_key, sizeof data_key, (const uint8_t *)object, strlen(object), &envelope, &err),
          "wrap a data key");
    printf("7. wrapped a 32-byte data key under key %s version %u; object metadata:\n", envelope.key_id,
           envelope.key_version);
    ks_metadata metadata;
    check(ks_envelope_to_metadata(&envelope, &metadata, &err), "write the metadata form");
    for (size_t i = 0; i < metadata.count; i++)
        printf("     %s: %s\n", metadata.entries[i].name, metadata.entries[i].value);
    ks_metadata_clear(&metadata);

    /* 8. Derive a stable per-origin key: the same inputs always give the same key. */
    const char *origin = "https://app.example", *instance = "web-1";
    ks_buffer origin_key = {NULL, 0};
    check(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)origin, strlen(origin), (const uint8_t *)instance,
                                        strlen(instance), 0, &origin_key, &err),
          "derive an origin key");
    printf("8. origin key for (%s, %s, epoch 0): ", origin, instance);
    print_hex(origin_key.data, origin_key.len);
    printf("\n");

    /* 9. Rotate: a new primary for new ciphertexts; old ones keep opening. */
    ks_key_info rotated;
    check(ks_keychain_rotate(kc, &rotated, &err), "rotate");
    printf("9. rotated; new primary is key %u (version %u)\n", rotated.key_id, rotated.version);

    /* 10. Everything made before the rotation still opens. */
    ks_buffer opened = {NULL, 0}, decrypted = {NULL, 0}, unwrapped = {NULL, 0};
    check(ks_keychain_unseal(kc, sealed.data, sealed.len, (const uint8_t *)aad, strlen(aad), &opened, &err), "unseal");
    check(ks_keychain_decrypt(kc, encrypted.data, encrypted.len, NULL, 0, &decrypted, &err), "decrypt");
    check(ks_keychain_unwrap_key(kc, &envelope, (const uint8_t *)object, strlen(object), &unwrapped, &err), "unwrap");
    int same = opened.len == strlen(secret) && memcmp(opened.data, secret, opened.len) == 0 &&
               decrypted.len == strlen(doc) && memcmp(decrypted.data, doc, decrypted.len) == 0 &&
               unwrapped.len == sizeof data_key && memcmp(unwrapped.data, data_key, sizeof data_key) == 0;
    printf("10. after rotation: unsealed \"%.*s\", decrypted \"%.*s\", unwrapped %zu bytes: %s\n", (int)opened.len,
           (const char *)opened.data, (int)decrypted.len, (const char *)decrypted.data, unwrapped.len,
           same ? "all match" : "MISMATCH");

    /* 11. The derived key did not change with the rotation. */
    ks_buffer again = {NULL, 0};
    check(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)origin, strlen(origin), (const uint8_t *)instance,
                                        strlen(instance), 0, &again, &err),
          "derive again");
    int stable = again.len == origin_key.len && memcmp(again.data, origin_key.data, again.len) == 0;
    printf("11. origin key after rotation: %s\n", stable ? "unchanged" : "CHANGED");

    /* A wrong aad is refused, with a status and a message. */
    ks_buffer refused = {NULL, 0};
    ks_status st = ks_keychain_unseal(kc, sealed.data, sealed.len, (const uint8_t *)"service=other", 13, &refused, &err);
    printf("12. unseal with the wrong aad: %s (%s)\n", ks_status_name((int)st), ks_error_message(err));
    ks_error_free(err);

    /* Release everything: buffers are wiped, handles freed. */
    ks_buffer_free(&opened);
    ks_buffer_free(&decrypted);
    ks_buffer_free(&unwrapped);
    ks_buffer_free(&again);
    ks_buffer_free(&origin_key);
    ks_buffer_free(&sealed);
    ks_buffer_free(&encrypted);
    ks_envelope_clear(&envelope);
    ks_keychain_free(kc);
    ks_root_free(root);
    unlink(path);
    rmdir(dir);

    if (!same || !stable || st != KS_ERR_AUTHENTICATION) {
        fprintf(stderr, "demo: unexpected result\n");
        return 1;
    }
    printf("done\n");
    return 0;
}
