/* json.h: a small strict JSON reader (a DOM) for safetensors headers and dataset.json files, and string
 * escaping for writers. Depth-limited and bounds-checked: malformed input is an error, never a crash. */
#ifndef EDM2_HOST_JSON_H
#define EDM2_HOST_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    double number;            /* JSON_NUMBER, JSON_BOOL (0/1) */
    char *string;             /* JSON_STRING */
    size_t n;                 /* JSON_ARRAY / JSON_OBJECT: number of items */
    struct json_value *items; /* [n] */
    char **keys;              /* JSON_OBJECT: [n] */
} json_value;

/* Parses text[0..len). Returns 0, or -1 with a reason and byte offset in why. */
int json_parse(const char *text, size_t len, json_value *out, char *why, size_t why_len);
void json_free(json_value *v);
const json_value *json_get(const json_value *obj, const char *key); /* NULL if absent or not an object */
/* Writes s as a JSON string literal (with quotes). */
void json_write_string(FILE *f, const char *s);

#endif
