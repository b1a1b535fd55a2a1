// SPDX-License-Identifier: MIT
/* libFuzzer: the system config parser on arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bh_config cfg;
	char err[512];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (bh_config_parse_string(text, "fuzz.conf", &cfg, err, sizeof(err)) == 0) {
		/* whatever parses must hold together */
		for (int i = 0; i < cfg.ncomp; i++) {
			if (!cfg.comp[i].exec[0] || cfg.comp[i].argc >= BH_MAX_ARGS ||
			    cfg.comp[i].nmatch > BH_MAX_MATCH || cfg.comp[i].limit_fds > 512)
				abort();
		}
	} else if (strncmp(err, "fuzz.conf:", 10) != 0) {
		abort(); /* every error names the file and line */
	}
	free(text);
	return 0;
}
