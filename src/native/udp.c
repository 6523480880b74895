/*
 * The TFTP engine's datagram path on Linux: batched sends and a lean receive.
 *
 * Sends. Node sends one datagram per system call and per
 * JavaScript round trip; a TFTP window is up to 64 datagrams of one size, which the kernel can take
 * in one sendmsg with UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18): the payload is
 * the window's packets back to back, cut every `segment` bytes. The packets stay in their own
 * buffers (one iovec each). The socket is Node's own (its file descriptor); every send here is
 * synchronous and non-blocking, as libuv's first attempt is, and the JavaScript side only calls it
 * while libuv has nothing queued, so datagrams keep their order.
 *
 * sendBatch(fd, address, port, segment, buffers, lengths, first, count) -> bytes sent, or -errno.
 * segment 0 sends one datagram (count must be 1).
 *
 * Receives. node:dgram receives every datagram into a fresh 64 KiB allocation and calls into
 * JavaScript once per datagram. watch() reads a socket here instead: every datagram that is ready
 * (up to 64 per wakeup) is copied into a Buffer of its own size and passed to
 * `onDatagram(buffer, address, port, answered)`, all in one callback scope (process.nextTick
 * callbacks and microtasks run after the batch). It polls a duplicate of the descriptor, so
 * libuv's own watcher of the socket (which keeps sending from its queue when the kernel's is full)
 * never meets ours; the caller stops Node's receiving first.
 *
 * With a `transient` Buffer (64 KiB), datagrams are received straight into it instead, and the
 * callback gets that Buffer and the length: valid only until the next datagram, which saves an
 * allocation (and the garbage collector's work) per datagram where the receiver copies what it
 * keeps anyway.
 *
 * watch(fd, onDatagram[, transient]) -> handle; onDatagram(buffer, address, port, answered,
 * length); unwatch(handle) (idempotent); refWatch(handle, bool).
 *
 * Armed replies. In lockstep a TFTP sender waits for each ACK, and every microsecond between the
 * ACK's arrival and the next DATA is a microsecond of every round trip. arm(handle, block, buffer,
 * length, address, port) tells the watcher: when an ACK of `block` comes from that peer, send
 * `buffer[0, length)` to it at once, then hand the ACK to JavaScript as usual with `answered`
 * true (the 4th argument). One-shot; disarm(handle) withdraws it.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define MAX_BATCH 64

static napi_value number(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* Parses an IPv4 or IPv6 literal (IPv6 with an optional %scope) into `out`. */
static socklen_t parse_address(const char *text, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    return sizeof *v4;
  }
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (strlen(text) >= sizeof host) return 0;
  strcpy(host, text);
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  char *scope = strchr(host, '%');
  if (scope) {
    *scope++ = '\0';
    char *end;
    unsigned long index = strtoul(scope, &end, 10);
    v6->sin6_scope_id = *end == '\0' && end != scope ? (uint32_t)index : if_nametoindex(scope);
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1) return 0;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons((uint16_t)port);
  return sizeof *v6;
}

static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 8)
    return fail(env, "sendBatch takes 8 arguments");
  int32_t fd, port, segment, first, count;
  char address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t address_length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof address, &address_length) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok ||
      napi_get_value_int32(env, argv[3], &segment) != napi_ok ||
      napi_get_value_int32(env, argv[6], &first) != napi_ok ||
      napi_get_value_int32(env, argv[7], &count) != napi_ok)
    return fail(env, "sendBatch: bad argument types");
  if (count < 1 || count > MAX_BATCH || first < 0 || segment < 0 || segment > 65535 ||
      (segment == 0 && count != 1))
    return fail(env, "sendBatch: bad count or segment size");

  struct sockaddr_storage to;
  socklen_t to_length = parse_address(address, port, &to);
  if (to_length == 0) return fail(env, "sendBatch: not an IP address");

  struct iovec iov[MAX_BATCH];
  for (int32_t i = 0; i < count; i++) {
    napi_value buffer, length_value;
    void *data;
    size_t size;
    int32_t length;
    if (napi_get_element(env, argv[4], (uint32_t)(first + i), &buffer) != napi_ok ||
        napi_get_buffer_info(env, buffer, &data, &size) != napi_ok ||
        napi_get_element(env, argv[5], (uint32_t)(first + i), &length_value) != napi_ok ||
        napi_get_value_int32(env, length_value, &length) != napi_ok || length < 0 ||
        (size_t)length > size)
      return fail(env, "sendBatch: bad buffer or length");
    iov[i].iov_base = data;
    iov[i].iov_len = (size_t)length;
  }

  char control[CMSG_SPACE(sizeof(uint16_t))];
  struct msghdr message = {
      .msg_name = &to,
      .msg_namelen = to_length,
      .msg_iov = iov,
      .msg_iovlen = (size_t)count,
  };
  if (segment > 0) {
    memset(control, 0, sizeof control);
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_UDP;
    header->cmsg_type = UDP_SEGMENT;
    header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = (uint16_t)segment;
    memcpy(CMSG_DATA(header), &size, sizeof size);
  }
  ssize_t sent;
  do sent = sendmsg(fd, &message, MSG_DONTWAIT);
  while (sent < 0 && errno == EINTR);
  return number(env, sent < 0 ? -errno : (double)sent);
}

#define MAX_READS 64

/* One receive buffer per thread (worker threads load their own copy of the addon's state). */
static __thread unsigned char datagram[65536];

typedef struct {
  uv_poll_t poll;
  int fd; /* our duplicate */
  int unwatched; /* no more reads or callbacks */
  int closed; /* libuv is done with the poll handle */
  int finalized; /* JavaScript dropped the handle */
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  napi_ref transient; /* the caller's receive buffer, or NULL: a copy per datagram */
  unsigned char *transient_data;
  /* The armed reply: sent when an ACK of armed_block arrives from armed_to. */
  napi_ref armed; /* the buffer, kept alive while armed; NULL when not armed */
  void *armed_data;
  size_t armed_length;
  uint16_t armed_block;
  struct sockaddr_storage armed_to;
  socklen_t armed_to_length;
} Watch;

static void disarm_watch(Watch *w) {
  if (!w->armed) return;
  napi_delete_reference(w->env, w->armed);
  w->armed = NULL;
}

static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Sends the armed reply if `bytes` is the ACK it waits for; one-shot either way. */
static int answer(Watch *w, const unsigned char *bytes, ssize_t size, const struct sockaddr_storage *from) {
  if (!w->armed || size != 4 || bytes[0] != 0 || bytes[1] != 4 ||
      (uint16_t)(bytes[2] << 8 | bytes[3]) != w->armed_block || !same_peer(from, &w->armed_to))
    return 0;
  ssize_t sent;
  do sent = sendto(w->fd, w->armed_data, w->armed_length, MSG_DONTWAIT,
                   (const struct sockaddr *)&w->armed_to, w->armed_to_length);
  while (sent < 0 && errno == EINTR);
  disarm_watch(w);
  return sent >= 0; /* else JavaScript sends it, through node:dgram's queue if need be */
}

/* The peer's address as node:dgram spells it: IPv6 link-local with %interface. */
static napi_value address_value(napi_env env, const struct sockaddr_storage *from) {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = "";
  if (from->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)from)->sin_addr, text, sizeof text);
  } else {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)from;
    inet_ntop(AF_INET6, &v6->sin6_addr, text, INET6_ADDRSTRLEN);
    char name[IF_NAMESIZE];
    if (v6->sin6_scope_id != 0) {
      size_t used = strlen(text);
      if (if_indextoname(v6->sin6_scope_id, name))
        snprintf(text + used, sizeof text - used, "%%%s", name);
      else
        snprintf(text + used, sizeof text - used, "%%%u", v6->sin6_scope_id);
    }
  }
  napi_value value;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value);
  return value;
}

static uint16_t port_of(const struct sockaddr_storage *from) {
  return ntohs(from->ss_family == AF_INET ? ((const struct sockaddr_in *)from)->sin_port
                                          : ((const struct sockaddr_in6 *)from)->sin6_port);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  Watch *watch = (Watch *)poll->data;
  if (watch->unwatched) return;
  /* A socket error (POLLERR) makes libuv stop the poll. Clear it (reads clear a pending error;
   * the error queue, filled only under IP_RECVERR, which nobody sets here, is drained) and poll on. */
  if (status < 0) {
    for (int i = 0; i < MAX_READS; i++)
      if (recv(watch->fd, datagram, sizeof datagram, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    uv_poll_start(poll, UV_READABLE, on_readable);
  }
  napi_env env = watch->env;
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource, callback, receiver;
  napi_open_handle_scope(env, &handles);
  napi_create_object(env, &resource);
  napi_open_callback_scope(env, resource, watch->context, &scope);
  napi_get_reference_value(env, watch->callback, &callback);
  napi_get_undefined(env, &receiver);
  unsigned char *target = watch->transient_data ? watch->transient_data : datagram;
  /* The callback may unwatch (the transfer ended): stop reading then. */
  for (int i = 0; i < MAX_READS && !watch->unwatched; i++) {
    struct sockaddr_storage from;
    socklen_t from_length = sizeof from;
    ssize_t size = recvfrom(watch->fd, target, sizeof datagram, MSG_DONTWAIT,
                            (struct sockaddr *)&from, &from_length);
    if (size < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: drained; anything else (a queued ICMP error) is cleared by this read */
    }
    if (from.ss_family != AF_INET && from.ss_family != AF_INET6) continue;
    int answered = answer(watch, target, size, &from);
    napi_value argv[5], result;
    if (watch->transient) {
      napi_get_reference_value(env, watch->transient, &argv[0]);
    } else {
      void *copy;
      napi_create_buffer_copy(env, (size_t)size, datagram, &copy, &argv[0]);
    }
    argv[1] = address_value(env, &from);
    napi_create_uint32(env, port_of(&from), &argv[2]);
    napi_get_boolean(env, answered, &argv[3]);
    napi_create_uint32(env, (uint32_t)size, &argv[4]);
    if (napi_call_function(env, receiver, callback, 5, argv, &result) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error); /* 'uncaughtException', as for any callback */
      break;
    }
  }
  napi_close_callback_scope(env, scope); /* runs process.nextTick callbacks and microtasks */
  napi_close_handle_scope(env, handles);
}

static void on_closed(uv_handle_t *handle) {
  Watch *w = (Watch *)handle->data;
  w->closed = 1;
  if (w->finalized) free(w);
}

/* Stops reading; libuv allows closing the descriptor right after uv_poll_stop, and the port must
 * be free as soon as the socket closes. No Node-API calls: this also runs from the finalizer. */
static void stop_polling(Watch *w) {
  if (w->unwatched) return;
  w->unwatched = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
  close(w->fd);
}

/* unwatch() from JavaScript (possibly inside the callback: the function stays alive on the stack,
 * and the async context's destroy hook is queued). */
static void stop(Watch *w) {
  if (w->unwatched) return;
  disarm_watch(w);
  napi_delete_reference(w->env, w->callback);
  if (w->transient) napi_delete_reference(w->env, w->transient);
  napi_async_destroy(w->env, w->context);
  stop_polling(w);
}

/* The handle was collected, which only happens after unwatch (the callback holds the socket that
 * holds the handle), or Node is tearing the environment down, which frees every reference itself:
 * no Node-API calls here. The memory goes once libuv is done too. */
static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  Watch *w = (Watch *)data;
  stop_polling(w);
  w->finalized = 1;
  if (w->closed) free(w);
}

static Watch *watch_of(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) return NULL;
  return (Watch *)data;
}

static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  napi_valuetype type;
  void *transient = NULL;
  size_t transient_size = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || argc > 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function ||
      (argc == 3 && (napi_get_buffer_info(env, argv[2], &transient, &transient_size) != napi_ok ||
                     transient_size < sizeof datagram)))
    return fail(env, "watch takes a descriptor, a function and optionally a 64 KiB Buffer");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return fail(env, "watch: no event loop");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return number(env, -errno);
  Watch *w = calloc(1, sizeof *w);
  napi_value name, handle;
  if (!w || napi_create_string_utf8(env, "TftpDatagrams", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      uv_poll_init(loop, &w->poll, copy) != 0) {
    close(copy);
    free(w);
    return fail(env, "watch: cannot poll the descriptor");
  }
  w->fd = copy;
  w->env = env;
  w->poll.data = w;
  napi_create_reference(env, argv[1], 1, &w->callback);
  if (transient) {
    napi_create_reference(env, argv[2], 1, &w->transient);
    w->transient_data = transient;
  }
  napi_async_init(env, NULL, name, &w->context);
  if (napi_create_external(env, w, on_finalize, NULL, &handle) != napi_ok) {
    stop(w);
    w->finalized = 1; /* on_closed frees it */
    return fail(env, "watch: out of memory");
  }
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  return handle;
}

/* The watch of a call whose one argument is a handle from watch(); NULL after a TypeError. */
static Watch *only_handle(napi_env env, napi_callback_info info, const char *name) {
  size_t argc = 1;
  napi_value argv[1];
  Watch *w;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      (w = watch_of(env, argv[0])) == NULL) {
    char message[64];
    snprintf(message, sizeof message, "%s takes a handle from watch", name);
    fail(env, message);
    return NULL;
  }
  return w;
}

static napi_value unwatch(napi_env env, napi_callback_info info) {
  Watch *w = only_handle(env, info, "unwatch");
  if (w) stop(w);
  return NULL;
}

static napi_value arm(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  Watch *w;
  int32_t block, length, port;
  void *data;
  size_t size;
  char address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t address_length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6 ||
      (w = watch_of(env, argv[0])) == NULL || napi_get_value_int32(env, argv[1], &block) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &data, &size) != napi_ok ||
      napi_get_value_int32(env, argv[3], &length) != napi_ok ||
      napi_get_value_string_utf8(env, argv[4], address, sizeof address, &address_length) != napi_ok ||
      napi_get_value_int32(env, argv[5], &port) != napi_ok)
    return fail(env, "arm: bad argument types");
  if (block < 0 || block > 65535 || length < 0 || (size_t)length > size || port < 0 || port > 65535)
    return fail(env, "arm: bad block, length or port");
  napi_value result;
  disarm_watch(w);
  w->armed_to_length = parse_address(address, port, &w->armed_to);
  if (w->unwatched || w->armed_to_length == 0) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  napi_create_reference(env, argv[2], 1, &w->armed);
  w->armed_data = data;
  w->armed_length = (size_t)length;
  w->armed_block = (uint16_t)block;
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value disarm(napi_env env, napi_callback_info info) {
  Watch *w = only_handle(env, info, "disarm");
  if (w) disarm_watch(w);
  return NULL;
}

static napi_value ref_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Watch *w;
  bool ref;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      (w = watch_of(env, argv[0])) == NULL || napi_get_value_bool(env, argv[1], &ref) != napi_ok)
    return fail(env, "refWatch takes a handle and a boolean");
  if (!w->unwatched) {
    if (ref) uv_ref((uv_handle_t *)&w->poll);
    else uv_unref((uv_handle_t *)&w->poll);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const struct { const char *name; napi_callback fn; } functions[] = {
      {"sendBatch", send_batch}, {"watch", watch}, {"unwatch", unwatch}, {"refWatch", ref_watch},
      {"arm", arm}, {"disarm", disarm}};
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
