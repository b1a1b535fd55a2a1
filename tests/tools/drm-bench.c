// SPDX-License-Identifier: MIT
/*
 * drm-bench: make bench-fb's baseline, the guest kernel's own bochs DRM
 * driver (a plain program, run as root in the test machine, with libdrm).
 * It sets WxH on the first connected connector with a dumb buffer
 * (DRM_IOCTL_MODE_CREATE_DUMB; bochs places it in video memory), then
 * writes N full frames into its mapping, each followed by DIRTYFB, as a
 * fbdev or dumb-buffer client would, and prints
 * "drm-bench: N full-screen frames of WxHx32 in S s: F per second, M MB/s".
 *
 *   drm-bench /dev/dri/cardN WxH N
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct drm_mode_create_dumb dumb = {.bpp = 32};
	struct drm_mode_map_dumb map = {0};
	drmModeModeInfo *mode = NULL;
	drmModeConnector *conn = NULL;
	drmModeRes *res;
	drmModeClip clip;
	uint32_t w, h, fb, crtc = 0, n;
	uint8_t *vram, *frame[2];
	double t0, s;
	int fd;

	if (argc != 4 || sscanf(argv[2], "%ux%u", &w, &h) != 2 || !(n = (uint32_t) atoi(argv[3]))) {
		fprintf(stderr, "usage: drm-bench /dev/dri/cardN WxH N\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	res = fd >= 0 ? drmModeGetResources(fd) : NULL;
	if (!res) {
		fprintf(stderr, "drm-bench: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (int i = 0; i < res->count_connectors && !mode; i++) {
		conn = drmModeGetConnector(fd, res->connectors[i]);
		for (int m = 0; conn && conn->connection == DRM_MODE_CONNECTED && m < conn->count_modes; m++)
			if (conn->modes[m].hdisplay == w && conn->modes[m].vdisplay == h)
				mode = &conn->modes[m];
		if (mode && conn->encoder_id) {
			drmModeEncoder *e = drmModeGetEncoder(fd, conn->encoder_id);
			crtc = e ? e->crtc_id : 0;
		}
		if (mode && !crtc)
			crtc = res->crtcs[0];
		if (!mode)
			drmModeFreeConnector(conn);
	}
	if (!mode) {
		fprintf(stderr, "drm-bench: no connected connector offers %ux%u\n", w, h);
		return 1;
	}
	dumb.width = w, dumb.height = h;
	if (drmIoctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) ||
	    drmModeAddFB(fd, w, h, 24, 32, dumb.pitch, dumb.handle, &fb)) {
		fprintf(stderr, "drm-bench: dumb buffer: %s\n", strerror(errno));
		return 1;
	}
	map.handle = dumb.handle;
	if (drmIoctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map) ||
	    (vram = mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 (off_t) map.offset)) == MAP_FAILED) {
		fprintf(stderr, "drm-bench: map: %s\n", strerror(errno));
		return 1;
	}
	if (drmModeSetCrtc(fd, crtc, fb, 0, 0, &conn->connector_id, 1, mode)) {
		fprintf(stderr, "drm-bench: set %ux%u: %s\n", w, h, strerror(errno));
		return 1;
	}
	/* two frames to alternate, so every frame changes every pixel */
	for (int k = 0; k < 2; k++) {
		frame[k] = malloc(dumb.size);
		if (!frame[k])
			return 1;
		for (size_t i = 0; i < dumb.size; i++)
			frame[k][i] = (uint8_t) (i * (k + 1) >> 4);
	}
	clip = (drmModeClip){.x1 = 0, .y1 = 0, .x2 = (uint16_t) w, .y2 = (uint16_t) h};
	t0 = now();
	for (uint32_t i = 0; i < n; i++) {
		memcpy(vram, frame[i & 1], dumb.size);
		drmModeDirtyFB(fd, fb, &clip, 1); /* bochs maps video memory: ENOSYS is fine */
	}
	s = now() - t0;
	printf("drm-bench: %u full-screen frames of %ux%ux32 in %.2f s: %.1f per second, %.0f MB/s\n",
	       n, w, h, s, n / s, n * (double) dumb.size / s / 1e6);
	return 0;
}
