// The C++ runtime pieces a freestanding-style program needs when there is no C++ standard
// library for musl: `operator new`/`delete` on malloc/free, and the pure/deleted virtual
// handlers. Exceptions and RTTI are not provided (the wrapper compiles with them off).
#include <stddef.h>
#include <stdlib.h>

namespace std {
struct nothrow_t {};
enum class align_val_t : size_t {};
}  // namespace std

static void *allocate(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) abort();
    return p;
}

static void *allocateAligned(size_t size, std::align_val_t align) {
    void *p = aligned_alloc(static_cast<size_t>(align), size ? size : 1);
    if (!p) abort();
    return p;
}

void *operator new(size_t size) { return allocate(size); }
void *operator new[](size_t size) { return allocate(size); }
void *operator new(size_t size, const std::nothrow_t &) noexcept { return malloc(size ? size : 1); }
void *operator new[](size_t size, const std::nothrow_t &) noexcept { return malloc(size ? size : 1); }
void *operator new(size_t size, std::align_val_t align) { return allocateAligned(size, align); }
void *operator new[](size_t size, std::align_val_t align) { return allocateAligned(size, align); }
void operator delete(void *p) noexcept { free(p); }
void operator delete[](void *p) noexcept { free(p); }
void operator delete(void *p, size_t) noexcept { free(p); }
void operator delete[](void *p, size_t) noexcept { free(p); }
void operator delete(void *p, std::align_val_t) noexcept { free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { free(p); }
void operator delete(void *p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void *p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { free(p); }

extern "C" void __cxa_pure_virtual() { abort(); }
extern "C" void __cxa_deleted_virtual() { abort(); }
