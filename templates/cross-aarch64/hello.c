#include <stdio.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname u;
    uname(&u);
    printf("Hello from a static C program on %s!\n", u.machine);
    return 0;
}
