// SPDX-License-Identifier: MIT
/*
 * fb-text: the text on a screenshot of term-fb (a plain program run in the
 * test machine). Each cell of the font's size is compared with the font's
 * glyphs for printable ASCII, as they are and inverted (the cursor), after
 * telling ink from paper by brightness; a cell matching none prints '?'.
 *
 *   fb-text FONT.psf.gz SHOT.png
 *
 * prints the screen, a line per row, trailing blanks cut.
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../bridges/term-fb/psf.h"

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (b = malloc((size_t) n)) && fread(b, 1, (size_t) n, f) == (size_t) n)
		*len = (size_t) n;
	else {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

/* does the cell at (cx, cy) show glyph g (ink where the glyph is set, or inverted)? */
static int match(const struct psf *f, const uint8_t *g, const uint8_t *pix, uint32_t w,
		 uint32_t cx, uint32_t cy, int inv)
{
	for (uint32_t y = 0; y < f->height; y++)
		for (uint32_t x = 0; x < f->width; x++) {
			const uint8_t *p = pix + ((size_t) (cy + y) * w + cx + x) * 3;
			int ink = p[0] + p[1] + p[2] > 3 * 128;
			if (ink != (psf_bit(f, g, x, y) ^ inv))
				return 0;
		}
	return 1;
}

int main(int argc, char **argv)
{
	static struct psf f;
	png_image img = {.version = PNG_IMAGE_VERSION};
	uint8_t *gz, *pix;
	size_t len = 0;
	char why[160], line[1024];

	if (argc != 3) {
		fprintf(stderr, "usage: fb-text FONT.psf.gz SHOT.png\n");
		return 2;
	}
	gz = slurp(argv[1], &len);
	if (!gz || psf_load_gz(&f, gz, len, why, sizeof(why))) {
		fprintf(stderr, "fb-text: %s: %s\n", argv[1], gz ? why : "cannot read");
		return 1;
	}
	if (!png_image_begin_read_from_file(&img, argv[2])) {
		fprintf(stderr, "fb-text: %s: %s\n", argv[2], img.message);
		return 1;
	}
	img.format = PNG_FORMAT_RGB;
	pix = malloc(PNG_IMAGE_SIZE(img));
	if (!pix || !png_image_finish_read(&img, NULL, pix, 0, NULL)) {
		fprintf(stderr, "fb-text: %s: %s\n", argv[2], img.message);
		return 1;
	}
	for (uint32_t row = 0; row < img.height / f.height; row++) {
		uint32_t n = 0, cols = img.width / f.width;
		for (uint32_t col = 0; col < cols && n < sizeof(line) - 1; col++) {
			char c = '?';
			for (int inv = 0; inv < 2 && c == '?'; inv++)
				for (int ch = ' '; ch < 0x7f; ch++)
					if (match(&f, psf_glyph(&f, (uint32_t) ch), pix, img.width,
						  col * f.width, row * f.height, inv)) {
						c = (char) ch;
						break;
					}
			line[n++] = c;
		}
		while (n && line[n - 1] == ' ')
			n--;
		line[n] = 0;
		printf("%s\n", line);
	}
	return 0;
}
