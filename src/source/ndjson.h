/* What the NDJSON reader and the decoder agree on about lines. */
#ifndef DDA_SOURCE_NDJSON_H
#define DDA_SOURCE_NDJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How many record positions (a record's index in its object) the NDJSON
 * line p[0..n) takes: 0 for a blank line, 1 for a record, and for a line
 * that may hold a batch ({"Records":[...]} as the file: target writes it,
 * or a DLQ line, whose records sit under "ddbaudit") at least as many as
 * it holds records. The reader numbers chunks by it and the decoder numbers
 * each line's records from the line's first position, so that records in
 * different chunks never share an index, whichever worker decodes them. */
uint32_t dda__ndjson_line_slots(const char *p, size_t n);

/* Whether no line of p[0..n) names "Records" or holds "\u": then each
 * line takes 0 positions if blank, else 1 (dda__ndjson_line_slots), and a
 * chunk of ordinary records needs no look at each line. */
bool dda__ndjson_plain(const char *p, size_t n);

#endif
