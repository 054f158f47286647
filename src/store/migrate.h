/* migrate.h: what store.c and migrate.c share; private to src/store */
#pragma once
#include <stdbool.h>
#include "store/db.h"
#include "util/buf.h"

/* migrate.c: brings the database at schema version FROM up to
 * store_schema_version(), inside the caller's transaction; -1 + error naming
 * the step that failed */
int schema_migrate(struct db *db, int from);

/* store.c: appends to SQL the column type (and default) that TABLE.COLUMN
 * gets when a step adds it, as its field table declares it; false (nothing
 * recorded) when no field table does */
bool schema_column_type(const char *table, const char *column, struct buf *sql);
