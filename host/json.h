/* json.h: JSON for safetensors headers and dataset.json files, through jansson (Debian's libjansson):
 * strict parsing (duplicate keys and NUL characters rejected, depth-limited, linear time) with a one-line
 * reason, typed reads of integers, and string escaping for the safetensors writer. */
#ifndef EDM2_HOST_JSON_H
#define EDM2_HOST_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parses text[0..len) into a new reference (json_decref it), or NULL with the reason, line and column
 * in why. Duplicate object keys are an error. */
json_t *json_parse_strict(const char *text, size_t len, char *why, size_t why_len);
/* An integral JSON number in [lo, hi] (an integer, or a real with no fractional part such as 3.0). */
int json_int_in(const json_t *v, int64_t lo, int64_t hi, int64_t *out);
/* Writes s as a JSON string literal (with quotes). */
void json_write_string(FILE *f, const char *s);

#endif
