/*
 * Loads a trace.dat file with KernelShark's own loader (libkshark), as the
 * KernelShark GUI does, and prints: all entries, then the entries of the
 * event EVENT ("system/name") recorded by tasks named COMM.
 *
 *   load FILE EVENT COMM
 *
 * Built and run by tests/other-readers.rs where libkshark-dev is installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libkshark.h>

int main(int argc, char **argv)
{
	struct kshark_context *ctx = NULL;
	struct kshark_entry **rows = NULL;
	ssize_t n, i;
	long match = 0;
	int sd;

	if (argc != 4) {
		fprintf(stderr, "usage: load FILE EVENT COMM\n");
		return 2;
	}
	if (!kshark_instance(&ctx))
		return 3;
	sd = kshark_open(ctx, argv[1]);
	if (sd < 0) {
		fprintf(stderr, "kshark_open failed on %s\n", argv[1]);
		return 4;
	}
	n = kshark_load_entries(ctx, sd, &rows);
	if (n < 0) {
		fprintf(stderr, "kshark_load_entries failed\n");
		return 5;
	}
	for (i = 0; i < n; i++) {
		char *name = kshark_get_event_name(rows[i]);
		const char *task = kshark_get_task(rows[i]);

		if (name && task && strcmp(name, argv[2]) == 0 && strcmp(task, argv[3]) == 0)
			match++;
		free(name);
		free(rows[i]);
	}
	free(rows);
	printf("%zd %ld\n", n, match);
	kshark_close(ctx, sd);
	kshark_free(ctx);
	return 0;
}
