// ASan + UBSan build for the bad-input tests.
//
// With the GC on, every Python object lives inside one large heap block, so ASan
// cannot see a C module reading past the end of an array. With the GC off,
// m_malloc goes to the system malloc: every object gets its own redzones and an
// over-read is reported as a heap-buffer-overflow.
#define MICROPY_ENABLE_GC                   (0)

// ASan intercepts setjmp/longjmp; the hand-written NLR assembly would confuse
// its view of the stack.
#define MICROPY_NLR_SETJMP                  (1)
