/*
 * The config-push example's listener, standing in for the hosts that
 * receive configuration: config-push-sink PORTFILE OUTFILE listens on
 * 127.0.0.1 on a port the kernel picks, writes that port to PORTFILE,
 * and appends what each connection sent, up to its end, to OUTFILE as
 * one line (a connection that sent nothing, none). It runs until killed (run.sh stops it with SIGTERM).
 *
 * One connection at a time: a push is a few hundred bytes. A peer that
 * sends nothing for 5 s is dropped, so one stuck handler cannot stop the
 * others' pushes. A line longer than SINK_MAX is cut there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SINK_MAX (1 << 20)

static char sink_buf[SINK_MAX + 1];

/* Writes all of buf to fd, or exits. */
static void
sink_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("config-push-sink: write");
			exit(1);
		}
		buf += n;
		len -= (size_t) n;
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t addrlen = sizeof addr;
	char port[16];
	int s, out, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: config-push-sink PORTFILE OUTFILE\n");
		return 2;
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *) &addr, sizeof addr) != 0 || listen(s, 64) != 0
	    || getsockname(s, (struct sockaddr *) &addr, &addrlen) != 0) {
		perror("config-push-sink: listen on 127.0.0.1");
		return 1;
	}
	out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out < 0) {
		perror(argv[2]);
		return 1;
	}
	/* The port last, whole: whoever waits for the file can connect. */
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	sink_write_all(fd, port, (size_t) snprintf(port, sizeof port, "%d\n", ntohs(addr.sin_port)));
	close(fd);

	for (;;) {
		struct timeval idle = {.tv_sec = 5};
		size_t len = 0;
		ssize_t n;
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("config-push-sink: accept");
			return 1;
		}
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
		while ((n = read(c, sink_buf + len, SINK_MAX - len)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;   /* idle too long, or reset: keep what came */
			len += (size_t) n;
			if (len == SINK_MAX)
				break;
		}
		close(c);
		if (len == 0)
			continue;
		sink_buf[len++] = '\n';
		sink_write_all(out, sink_buf, len);
	}
}
