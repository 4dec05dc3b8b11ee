#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

int main(void) {
    const char *text = "hello, static world";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    if (!EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL)) {
        fprintf(stderr, "SHA-256 failed\n");
        return 1;
    }
    printf("sha256(\"%s\") = ", text);
    for (unsigned int i = 0; i < len; i++) printf("%02x", digest[i]);
    printf("\n");
    return 0;
}
