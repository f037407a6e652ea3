/*
 * keystrata's C ABI beside OpenSSL's EVP AES-256-GCM, interleaved (A B A B,
 * several rounds). Prints one JSON line per case and implementation (ns per
 * call). Run by `make bench` (bench/run.py).
 *
 * The OpenSSL peer does what ks_keychain_seal does: draws a random 12-byte
 * nonce (RAND_bytes), allocates nonce|ct|tag, encrypts. keystrata is shown
 * both with its allocating call (ks_keychain_seal + ks_buffer_free) and
 * writing into a caller's buffer (ks_keychain_seal_to).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keystrata.h"

static int ROUNDS = 7;
static double SAMPLE_S = 0.04;
static volatile size_t sink;

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef void (*fn)(void *);
struct imp { const char *name; fn f; void *arg; };

static long calibrate(fn f, void *arg) {
	for (long n = 1;; n *= 4) {
		double t = now();
		for (long i = 0; i < n; i++) f(arg);
		double el = now() - t;
		if (el >= SAMPLE_S * 1e9 / 4 || n >= (1L << 30)) {
			long k = (long)(SAMPLE_S * 1e9 / (el / n));
			return k < 1 ? 1 : k;
		}
	}
}

static void run(const char *c, size_t size, struct imp *imps, int n) {
	long iters[4];
	double s[4][64];
	for (int i = 0; i < n; i++) iters[i] = calibrate(imps[i].f, imps[i].arg);
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < n; i++) {
			double t = now();
			for (long k = 0; k < iters[i]; k++) imps[i].f(imps[i].arg);
			s[i][r] = (now() - t) / iters[i];
		}
	for (int i = 0; i < n; i++) {
		printf("{\"lang\":\"c\",\"case\":\"%s\",\"size\":%zu,\"impl\":\"%s\",\"unit\":\"ns\",\"samples\":[", c, size, imps[i].name);
		for (int r = 0; r < ROUNDS; r++) printf("%s%.3f", r ? "," : "", s[i][r]);
		printf("]}\n");
	}
	fflush(stdout);
}

struct ctx {
	ks_keychain *kc;
	EVP_CIPHER_CTX *evp;
	const uint8_t *pt;
	size_t len;
	uint8_t *room;
};

/* The error of the last call (every call takes &err; the library sets it to NULL on success). */
static ks_error *err;

static void die(const char *what) { fprintf(stderr, "bench: %s failed: %s\n", what, ks_error_message(err)); exit(1); }

static void ks_seal(void *a) {
	struct ctx *c = a;
	ks_buffer out = {0};
	if (ks_keychain_seal(c->kc, c->pt, c->len, (const uint8_t *)"aad", 3, &out, &err) != KS_OK) die("seal");
	sink += out.len;
	ks_buffer_free(&out);
}

static void ks_seal_to(void *a) {
	struct ctx *c = a;
	size_t n = 0;
	if (ks_keychain_seal_to(c->kc, c->pt, c->len, (const uint8_t *)"aad", 3, c->room, c->len + 33, &n, &err) != KS_OK)
		die("seal_to");
	sink += c->room[0];
}

static void ks_encrypt(void *a) {
	struct ctx *c = a;
	ks_buffer out = {0};
	if (ks_keychain_encrypt(c->kc, c->pt, c->len, (const uint8_t *)"aad", 3, &out, &err) != KS_OK) die("encrypt");
	sink += out.len;
	ks_buffer_free(&out);
}

/* nonce(12) | ct | tag(16) into `out` with OpenSSL EVP. */
static void evp_seal_into(struct ctx *c, uint8_t *out) {
	int n = 0, m = 0;
	if (RAND_bytes(out, 12) != 1 ||
	    EVP_EncryptInit_ex(c->evp, NULL, NULL, NULL, out) != 1 ||
	    EVP_EncryptUpdate(c->evp, NULL, &n, (const uint8_t *)"aad", 3) != 1 ||
	    EVP_EncryptUpdate(c->evp, out + 12, &n, c->pt, (int)c->len) != 1 ||
	    EVP_EncryptFinal_ex(c->evp, out + 12 + n, &m) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->evp, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + c->len) != 1) {
		fprintf(stderr, "bench: EVP failed\n");
		exit(1);
	}
}

static void evp_seal(void *a) {
	struct ctx *c = a;
	uint8_t *out = malloc(c->len + 28);
	evp_seal_into(c, out);
	sink += out[0];
	free(out);
}

static void evp_seal_room(void *a) {
	struct ctx *c = a;
	evp_seal_into(c, c->room);
	sink += c->room[0];
}

int main(int argc, char **argv) {
	(void)argc; (void)argv;
	if (getenv("BENCH_ROUNDS")) ROUNDS = atoi(getenv("BENCH_ROUNDS"));
	if (ROUNDS < 1 || ROUNDS > 64) ROUNDS = 7;
	if (getenv("BENCH_SAMPLE_MS")) SAMPLE_S = atoi(getenv("BENCH_SAMPLE_MS")) / 1000.0;
	ks_keychain *kc;
	if (ks_keychain_generate(NULL, &kc, &err) != KS_OK) die("generate");
	uint8_t key[32];
	RAND_bytes(key, 32);
	EVP_CIPHER_CTX *evp = EVP_CIPHER_CTX_new();
	if (EVP_EncryptInit_ex(evp, EVP_aes_256_gcm(), NULL, key, NULL) != 1) return 1;
	size_t sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
	for (int i = 0; i < 4; i++) {
		size_t n = sizes[i];
		uint8_t *pt = calloc(1, n), *room = malloc(n + 128);
		struct ctx c = {kc, evp, pt, n, room};
		struct imp seal[] = {{"keystrata", ks_seal, &c}, {"openssl-evp", evp_seal, &c}};
		run("seal", n, seal, 2);
		struct imp seal_to[] = {{"keystrata", ks_seal_to, &c}, {"openssl-evp", evp_seal_room, &c}};
		run("seal_to", n, seal_to, 2);
		struct imp enc[] = {{"keystrata", ks_encrypt, &c}, {"openssl-evp", evp_seal, &c}};
		run("encrypt", n, enc, 2);
		free(pt);
		free(room);
	}
	EVP_CIPHER_CTX_free(evp);
	ks_keychain_free(kc);
	printf("{\"lang\":\"c\",\"case\":\"_version\",\"size\":0,\"impl\":\"%s\",\"unit\":\"\",\"samples\":[]}\n", OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
