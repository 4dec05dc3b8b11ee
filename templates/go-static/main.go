package main

/*
#include <stdio.h>

static int twice(int x) { return 2 * x; }

static void hello(void) {
    printf("Hello from C, through cgo!\n");
    fflush(stdout);
}
*/
import "C"

import "fmt"

func main() {
	C.hello()
	fmt.Println("twice(21) =", C.twice(21))
}
