/* Functions that invite buffer overflows or hidden global state. Using one
 * is a compile error; the comment says what to use instead. */
#ifndef DDA_BANNED_H
#define DDA_BANNED_H

#define DDA_BANNED(f) sorry_##f##_is_banned_in_ddbaudit

#undef strcpy
#define strcpy(x, y) DDA_BANNED(strcpy) /* use memcpy with a known length */
#undef strcat
#define strcat(x, y) DDA_BANNED(strcat) /* use dda_buf */
#undef strncpy
#define strncpy(x, y, n) DDA_BANNED(strncpy) /* use memcpy or snprintf */
#undef sprintf
#define sprintf(...) DDA_BANNED(sprintf) /* use snprintf or dda_buf_addf */
#undef vsprintf
#define vsprintf(...) DDA_BANNED(vsprintf) /* use vsnprintf */
#undef strtok
#define strtok(x, y) DDA_BANNED(strtok) /* global state; use strtok_r or a slice */
#undef gmtime
#define gmtime(x) DDA_BANNED(gmtime) /* global state; use dda_time_to_civil */
#undef localtime
#define localtime(x) DDA_BANNED(localtime) /* reports are in UTC */
#undef gets
#define gets(x) DDA_BANNED(gets)

#endif
