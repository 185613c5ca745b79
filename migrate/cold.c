/* migrate/cold.c: a cold move (placeholder, being written). */
#include <errno.h>

#include "migrate/internal.h"

int migrate_cold_move(const char *config_path, const struct proto_json_value *opts,
		      void (*line)(void *opaque, const char *line), void *opaque,
		      enum migrate_result *result, char *err)
{
	(void)config_path;
	(void)opts;
	(void)line;
	(void)opaque;
	*result = MIGRATE_FAILED;
	return util_error(err, ENOSYS, "cold moves are not there yet");
}
