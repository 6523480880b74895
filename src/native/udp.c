/*
 * Batched UDP sends for the TFTP engine (Linux). Node sends one datagram per system call and per
 * JavaScript round trip; a TFTP window is up to 64 datagrams of one size, which the kernel can take
 * in one sendmsg with UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18): the payload is
 * the window's packets back to back, cut every `segment` bytes. The packets stay in their own
 * buffers (one iovec each). The socket is Node's own (its file descriptor); every send here is
 * synchronous and non-blocking, as libuv's first attempt is, and the JavaScript side only calls it
 * while libuv has nothing queued, so datagrams keep their order.
 *
 * sendBatch(fd, address, port, segment, buffers, lengths, first, count) -> bytes sent, or -errno.
 * segment 0 sends one datagram (count must be 1).
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sendBatch", NAPI_AUTO_LENGTH, send_batch, NULL, &fn);
  napi_set_named_property(env, exports, "sendBatch", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
