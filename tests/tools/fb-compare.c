// SPDX-License-Identifier: MIT
/*
 * fb-compare: the display tests' judge (a plain program, run as root in
 * the test machine, not a component).
 *
 *   fb-compare expect WxH OUT.png   write the test pattern (fb-pattern.h)
 *   fb-compare check FILE.png WxH   FILE's decoded pixels against the pattern
 *
 * check prints "equal: WxH" and exits 0, or says how FILE differs (size,
 * how many pixels, the first one) and exits 1.
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fb-pattern.h"

static int parse_size(const char *s, uint32_t *w, uint32_t *h)
{
	char end;

	return sscanf(s, "%ux%u%c", w, h, &end) == 2 && *w && *h && *w <= 16384 && *h <= 16384 ? 0
											       : -1;
}

static uint8_t *pattern(uint32_t w, uint32_t h)
{
	uint8_t *p = malloc((size_t) w * h * 3);

	for (uint32_t y = 0; p && y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint32_t v = fb_pattern_pixel(x, y, w, h);
			uint8_t *o = p + ((size_t) y * w + x) * 3;
			o[0] = v >> 16;
			o[1] = v >> 8;
			o[2] = v;
		}
	return p;
}

int main(int argc, char **argv)
{
	png_image img;
	uint32_t w, h;
	uint8_t *want, *got;
	size_t diff = 0, first = 0;

	if (argc != 4 || (strcmp(argv[1], "expect") && strcmp(argv[1], "check"))) {
		fprintf(stderr, "usage: fb-compare expect WxH OUT.png | check FILE.png WxH\n");
		return 2;
	}
	if (parse_size(argv[1][0] == 'e' ? argv[2] : argv[3], &w, &h)) {
		fprintf(stderr, "fb-compare: a size is WxH\n");
		return 2;
	}
	want = pattern(w, h);
	if (!want)
		return 2;
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (argv[1][0] == 'e') {
		img.width = w;
		img.height = h;
		img.format = PNG_FORMAT_RGB;
		if (!png_image_write_to_file(&img, argv[3], 0, want, 0, NULL)) {
			fprintf(stderr, "fb-compare: %s: %s\n", argv[3], img.message);
			return 2;
		}
		return 0;
	}
	if (!png_image_begin_read_from_file(&img, argv[2])) {
		printf("unreadable: %s: %s\n", argv[2], img.message);
		return 1;
	}
	img.format = PNG_FORMAT_RGB;
	if (img.width != w || img.height != h) {
		printf("differ: %s is %ux%u, want %ux%u\n", argv[2], img.width, img.height, w, h);
		return 1;
	}
	got = malloc(PNG_IMAGE_SIZE(img));
	if (!got || !png_image_finish_read(&img, NULL, got, 0, NULL)) {
		printf("unreadable: %s: %s\n", argv[2], img.message);
		return 1;
	}
	for (size_t i = 0; i < (size_t) w * h; i++)
		if (memcmp(got + 3 * i, want + 3 * i, 3) && !diff++)
			first = i;
	if (diff) {
		const uint8_t *g = got + 3 * first, *e = want + 3 * first;
		printf("differ: %zu of %zu pixels; first at (%zu,%zu): #%02x%02x%02x, want "
		       "#%02x%02x%02x\n",
		       diff, (size_t) w * h, first % w, first / w, g[0], g[1], g[2], e[0], e[1],
		       e[2]);
		return 1;
	}
	printf("equal: %ux%u\n", w, h);
	return 0;
}
