/* SPDX-License-Identifier: MIT */
/* The bulkhead command's pieces: core's replies, tables, JSON, PCI devices. */
#ifndef BH_CLI_H
#define BH_CLI_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* exit codes, as `bulkhead --help` lists them */
enum {
	BH_EXIT_OK = 0,
	BH_EXIT_FAILED = 1,  /* refused or failed: the reason is on stderr */
	BH_EXIT_USAGE = 2,   /* a mistake on the command line */
	BH_EXIT_NO_CORE = 3, /* core is not running (or not reachable) */
	BH_EXIT_UNKNOWN = 4, /* no such component or device */
};

#define BH_RECORD_MAX_KV 48

/*
 * One line of core's status: "KIND NAME key=value key="a value" ...".
 * Parsed in place: the strings point into the line.
 */
struct bh_record {
	const char *kind;
	const char *name;
	const char *key[BH_RECORD_MAX_KV];
	const char *value[BH_RECORD_MAX_KV];
	int nkv;
};

/* 0, or -1 if the line is not "KIND NAME ..." */
int bh_record_parse(char *line, struct bh_record *r);
const char *bh_record_get(const struct bh_record *r, const char *key);
/* a JSON object of the record: "kind", "name" and each key; numbers as numbers */
struct json_object *bh_record_json(const struct bh_record *r);

/* a table for people: columns as wide as their widest cell */
struct bh_table {
	int ncol;
	const char *head[16];
	char **cell; /* nrow * ncol, copies */
	int nrow;
	int cap;
};
void bh_table_init(struct bh_table *t, int ncol, const char *const *head);
void bh_table_add(struct bh_table *t, const char *const *cells);
void bh_table_print(const struct bh_table *t, FILE *f);
void bh_table_free(struct bh_table *t);

/* "42" -> true (what JSON gets as a number) */
bool bh_is_integer(const char *s);
/* 1536 -> "1.5K", 3 << 20 -> "3.0M": bytes at a glance */
const char *bh_human_bytes(unsigned long long n, char *buf, size_t len);

/*
 * may a device bound to driver (or none, "") with PCI class class_code
 * share an IOMMU group with a device given to vfio-pci? VFIO's rule: only
 * if vfio-pci, pci-stub or no driver holds it, or it is a bridge
 */
bool bh_group_member_ok(const char *driver, unsigned int class_code);

/* /proc/interrupts: the interrupts counted for the PCI device at address (all CPUs, all vectors) */
unsigned long long bh_irq_count(const char *interrupts, const char *address);

/* a line of "bulkhead logs": "NAME SECONDS SOURCE TEXT", parsed in place */
struct bh_log_line {
	const char *component;
	double seconds;
	const char *source;
	const char *text;
};
int bh_log_line_parse(char *line, struct bh_log_line *l);

/* control.c: one request to core; its whole reply in *reply (malloc'ed) */
extern const char *bh_control_path;
extern bool bh_control_quiet; /* say nothing when core is not there */
int bh_control_ask(const char *cmd, char **reply);
/* connect and send cmd: the socket, or -BH_EXIT_NO_CORE with the reason printed */
int bh_control_connect(const char *cmd);

/* devices.c */
int bh_cmd_devices(int argc, char **argv);
int bh_cmd_bind(int argc, char **argv);
int bh_cmd_unbind(int argc, char **argv);
/* trace.c */
int bh_cmd_trace(int argc, char **argv);
int bh_cmd_crashes(int argc, char **argv);
/* a crash report's signal, function, file and line (JSON), or NULL; and as one line */
struct json_object *bh_crash_brief(const char *path);
void bh_crash_brief_print(const char *name, const char *path, FILE *f);
/* main.c: a command's usage and help into f; returns rc */
int bh_cmd_help(const char *name, FILE *f, int rc);
/* debug.c: gdb on a running component */
int bh_cmd_debug(int argc, char **argv);
/* newdriver.c: a driver folder from the template */
int bh_cmd_new_driver(int argc, char **argv);

#endif
