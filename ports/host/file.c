// open() over POSIX file descriptors, and sys.stdin/stdout/stderr.
//
// The sdist has no extmod/ (and so no VfsPosix), so the port supplies the file
// objects itself: FileIO for binary mode, TextIOWrapper for text mode, both
// thin wrappers over a file descriptor using MicroPython's stream protocol.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "py/builtin.h"
#include "py/mperrno.h"
#include "py/runtime.h"
#include "py/stream.h"

typedef struct _host_file_obj_t {
    mp_obj_base_t base;
    int fd;
} host_file_obj_t;

static host_file_obj_t stdio_buffer_objs[3];

static void check_fd_is_open(const host_file_obj_t *self) {
    if (self->fd < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("I/O operation on closed file"));
    }
}

static void host_file_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    (void)kind;
    host_file_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_printf(print, "<io.%s %d>", mp_obj_get_type_str(self_in), self->fd);
}

static mp_uint_t host_file_read(mp_obj_t self_in, void *buf, mp_uint_t size, int *errcode) {
    host_file_obj_t *self = MP_OBJ_TO_PTR(self_in);
    check_fd_is_open(self);
    for (;;) {
        ssize_t n = read(self->fd, buf, size);
        if (n >= 0) {
            return (mp_uint_t)n;
        }
        if (errno != EINTR) {
            *errcode = errno;
            return MP_STREAM_ERROR;
        }
        mp_handle_pending(true);
    }
}

static mp_uint_t host_file_write(mp_obj_t self_in, const void *buf, mp_uint_t size, int *errcode) {
    host_file_obj_t *self = MP_OBJ_TO_PTR(self_in);
    check_fd_is_open(self);
    for (;;) {
        ssize_t n = write(self->fd, buf, size);
        if (n >= 0) {
            return (mp_uint_t)n;
        }
        if (errno != EINTR) {
            *errcode = errno;
            return MP_STREAM_ERROR;
        }
        mp_handle_pending(true);
    }
}

static mp_uint_t host_file_ioctl(mp_obj_t self_in, mp_uint_t request, uintptr_t arg, int *errcode) {
    host_file_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (request != MP_STREAM_CLOSE) {
        check_fd_is_open(self);
    }
    switch (request) {
        case MP_STREAM_FLUSH:
            // Unbuffered: every write already reached the kernel.
            return 0;
        case MP_STREAM_SEEK: {
            struct mp_stream_seek_t *s = (struct mp_stream_seek_t *)arg;
            off_t off = lseek(self->fd, (off_t)s->offset, s->whence);
            if (off == (off_t)-1) {
                *errcode = errno;
                return MP_STREAM_ERROR;
            }
            s->offset = (mp_off_t)off;
            return 0;
        }
        case MP_STREAM_CLOSE:
            // The standard streams are never closed: later output would be lost.
            if (self->fd > STDERR_FILENO) {
                close(self->fd);
            }
            self->fd = -1;
            return 0;
        case MP_STREAM_GET_FILENO:
            return (mp_uint_t)self->fd;
        default:
            *errcode = MP_EINVAL;
            return MP_STREAM_ERROR;
    }
}

static mp_obj_t host_file_fileno(mp_obj_t self_in) {
    host_file_obj_t *self = MP_OBJ_TO_PTR(self_in);
    check_fd_is_open(self);
    return MP_OBJ_NEW_SMALL_INT(self->fd);
}
static MP_DEFINE_CONST_FUN_OBJ_1(host_file_fileno_obj, host_file_fileno);

static mp_obj_t host_file___exit__(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    return mp_stream_close(args[0]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(host_file___exit___obj, 4, 4, host_file___exit__);

// sys.stdout.buffer and friends: the binary stream under a standard text stream.
static void host_textio_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    host_file_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (dest[0] == MP_OBJ_NULL && attr == MP_QSTR_buffer
        && self->fd >= STDIN_FILENO && self->fd <= STDERR_FILENO) {
        dest[0] = MP_OBJ_FROM_PTR(&stdio_buffer_objs[self->fd]);
        return;
    }
    // Everything else is looked up in the locals dict.
    dest[1] = MP_OBJ_SENTINEL;
}

static const mp_rom_map_elem_t host_file_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_fileno), MP_ROM_PTR(&host_file_fileno_obj) },
    { MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&mp_stream_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_readinto), MP_ROM_PTR(&mp_stream_readinto_obj) },
    { MP_ROM_QSTR(MP_QSTR_readline), MP_ROM_PTR(&mp_stream_unbuffered_readline_obj) },
    { MP_ROM_QSTR(MP_QSTR_readlines), MP_ROM_PTR(&mp_stream_unbuffered_readlines_obj) },
    { MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&mp_stream_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_seek), MP_ROM_PTR(&mp_stream_seek_obj) },
    { MP_ROM_QSTR(MP_QSTR_tell), MP_ROM_PTR(&mp_stream_tell_obj) },
    { MP_ROM_QSTR(MP_QSTR_flush), MP_ROM_PTR(&mp_stream_flush_obj) },
    { MP_ROM_QSTR(MP_QSTR_close), MP_ROM_PTR(&mp_stream_close_obj) },
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&mp_stream_close_obj) },
    { MP_ROM_QSTR(MP_QSTR___enter__), MP_ROM_PTR(&mp_identity_obj) },
    { MP_ROM_QSTR(MP_QSTR___exit__), MP_ROM_PTR(&host_file___exit___obj) },
};
static MP_DEFINE_CONST_DICT(host_file_locals_dict, host_file_locals_dict_table);

static const mp_stream_p_t host_fileio_stream_p = {
    .read = host_file_read,
    .write = host_file_write,
    .ioctl = host_file_ioctl,
};

static const mp_stream_p_t host_textio_stream_p = {
    .read = host_file_read,
    .write = host_file_write,
    .ioctl = host_file_ioctl,
    .is_text = true,
};

MP_DEFINE_CONST_OBJ_TYPE(
    host_type_fileio,
    MP_QSTR_FileIO,
    MP_TYPE_FLAG_ITER_IS_STREAM,
    print, host_file_print,
    protocol, &host_fileio_stream_p,
    locals_dict, &host_file_locals_dict
    );

MP_DEFINE_CONST_OBJ_TYPE(
    host_type_textio,
    MP_QSTR_TextIOWrapper,
    MP_TYPE_FLAG_ITER_IS_STREAM,
    print, host_file_print,
    attr, host_textio_attr,
    protocol, &host_textio_stream_p,
    locals_dict, &host_file_locals_dict
    );

// open(file, mode='r', buffering=-1, encoding=None)
static mp_obj_t host_open(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_file, ARG_mode, ARG_buffering, ARG_encoding };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_file, MP_ARG_OBJ | MP_ARG_REQUIRED, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_mode, MP_ARG_OBJ, {.u_rom_obj = MP_ROM_QSTR(MP_QSTR_r)} },
        { MP_QSTR_buffering, MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_encoding, MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);

    const char *mode = mp_obj_str_get_str(args[ARG_mode].u_obj);
    int flags = 0;
    const mp_obj_type_t *type = &host_type_textio;
    bool have_rw = false;
    for (const char *m = mode; *m != '\0'; ++m) {
        switch (*m) {
            case 'r':
                flags |= O_RDONLY;
                have_rw = true;
                break;
            case 'w':
                flags |= O_WRONLY | O_CREAT | O_TRUNC;
                have_rw = true;
                break;
            case 'a':
                flags |= O_WRONLY | O_CREAT | O_APPEND;
                have_rw = true;
                break;
            case 'x':
                flags |= O_WRONLY | O_CREAT | O_EXCL;
                have_rw = true;
                break;
            case '+':
                flags = (flags & ~(O_RDONLY | O_WRONLY)) | O_RDWR;
                break;
            case 'b':
                type = &host_type_fileio;
                break;
            case 't':
                type = &host_type_textio;
                break;
            default:
                mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("invalid mode: '%s'"), mode);
        }
    }
    if (!have_rw) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("invalid mode: '%s'"), mode);
    }

    mp_obj_t file_in = args[ARG_file].u_obj;
    int fd;
    if (mp_obj_is_small_int(file_in)) {
        // open(fd) wraps an existing descriptor, as in CPython.
        fd = MP_OBJ_SMALL_INT_VALUE(file_in);
    } else {
        const char *path = mp_obj_str_get_str(file_in);
        MP_THREAD_GIL_EXIT();
        fd = open(path, flags | O_CLOEXEC, 0644);
        MP_THREAD_GIL_ENTER();
        if (fd < 0) {
            mp_raise_OSError_with_filename(errno, path);
        }
    }
    host_file_obj_t *o = mp_obj_malloc_with_finaliser(host_file_obj_t, type);
    o->fd = fd;
    return MP_OBJ_FROM_PTR(o);
}
MP_DEFINE_CONST_FUN_OBJ_KW(mp_builtin_open_obj, 1, host_open);

mp_import_stat_t mp_import_stat(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            return MP_IMPORT_STAT_DIR;
        } else if (S_ISREG(st.st_mode)) {
            return MP_IMPORT_STAT_FILE;
        }
    }
    return MP_IMPORT_STAT_NO_EXIST;
}

// sys.stdin/stdout/stderr are text streams over fds 0, 1 and 2, each with a
// binary .buffer, so that stderr really goes to fd 2 (shared/runtime's version
// sends it to stdout).
// (Not const: close() marks a file closed by writing its fd.)
host_file_obj_t mp_sys_stdin_obj = {{&host_type_textio}, STDIN_FILENO};
host_file_obj_t mp_sys_stdout_obj = {{&host_type_textio}, STDOUT_FILENO};
host_file_obj_t mp_sys_stderr_obj = {{&host_type_textio}, STDERR_FILENO};
static host_file_obj_t stdio_buffer_objs[3] = {
    {{&host_type_fileio}, STDIN_FILENO},
    {{&host_type_fileio}, STDOUT_FILENO},
    {{&host_type_fileio}, STDERR_FILENO},
};
