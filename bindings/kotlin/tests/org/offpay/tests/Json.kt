package org.offpay.tests

/**
 * A small JSON reader for what `offpay --json` prints (one object per
 * line): objects, arrays, strings, integers, booleans and null. Numbers are
 * kept as Long (the CLI's amounts are integers of minor units); a fraction
 * or exponent is refused, as is anything after the value.
 */
sealed class Json {
    data class Obj(val fields: Map<String, Json>) : Json()
    data class Arr(val items: List<Json>) : Json()
    data class Str(val value: String) : Json()
    data class Num(val value: Long) : Json()
    data class Bool(val value: Boolean) : Json()
    object Null : Json()

    /** The field [key] of an object (Null if absent). */
    operator fun get(key: String): Json =
        (this as? Obj ?: throw JsonException("not an object, cannot take .$key: $this")).fields[key] ?: Null

    val string: String get() = (this as? Str ?: throw JsonException("not a string: $this")).value
    val long: Long get() = (this as? Num ?: throw JsonException("not an integer: $this")).value
    val bool: Boolean get() = (this as? Bool ?: throw JsonException("not a boolean: $this")).value
    val list: List<Json> get() = (this as? Arr ?: throw JsonException("not an array: $this")).items

    companion object {
        fun parse(text: String): Json {
            val reader = Reader(text)
            reader.skipSpace()
            val value = reader.value(0)
            reader.skipSpace()
            if (reader.position != text.length) {
                throw JsonException("text after the JSON value at ${reader.position}: ${text.take(200)}")
            }
            return value
        }
    }
}

class JsonException(message: String) : Exception(message)

private const val JSON_DEPTH_MAX = 64

private class Reader(val text: String) {
    var position = 0

    fun skipSpace() {
        while (position < text.length && text[position] in " \t\r\n") position++
    }

    private fun fail(what: String): Nothing = throw JsonException("$what at offset $position in ${text.take(200)}")

    private fun expect(char: Char) {
        if (position >= text.length || text[position] != char) fail("expected '$char'")
        position++
    }

    fun value(depth: Int): Json {
        if (depth > JSON_DEPTH_MAX) fail("nested deeper than $JSON_DEPTH_MAX")
        if (position >= text.length) fail("unexpected end")
        return when (text[position]) {
            '{' -> obj(depth)
            '[' -> arr(depth)
            '"' -> Json.Str(string())
            't' -> literal("true", Json.Bool(true))
            'f' -> literal("false", Json.Bool(false))
            'n' -> literal("null", Json.Null)
            else -> number()
        }
    }

    private fun literal(word: String, value: Json): Json {
        if (!text.startsWith(word, position)) fail("expected $word")
        position += word.length
        return value
    }

    private fun obj(depth: Int): Json {
        expect('{')
        val fields = LinkedHashMap<String, Json>()
        skipSpace()
        if (position < text.length && text[position] == '}') {
            position++
            return Json.Obj(fields)
        }
        while (true) {
            skipSpace()
            val key = string()
            skipSpace()
            expect(':')
            skipSpace()
            if (fields.put(key, value(depth + 1)) != null) fail("duplicate key \"$key\"")
            skipSpace()
            if (position < text.length && text[position] == ',') {
                position++
                continue
            }
            expect('}')
            return Json.Obj(fields)
        }
    }

    private fun arr(depth: Int): Json {
        expect('[')
        val items = ArrayList<Json>()
        skipSpace()
        if (position < text.length && text[position] == ']') {
            position++
            return Json.Arr(items)
        }
        while (true) {
            skipSpace()
            items.add(value(depth + 1))
            skipSpace()
            if (position < text.length && text[position] == ',') {
                position++
                continue
            }
            expect(']')
            return Json.Arr(items)
        }
    }

    private fun string(): String {
        expect('"')
        val out = StringBuilder()
        while (true) {
            if (position >= text.length) fail("unterminated string")
            val char = text[position++]
            when {
                char == '"' -> return out.toString()
                char == '\\' -> {
                    if (position >= text.length) fail("unterminated escape")
                    when (val escaped = text[position++]) {
                        '"', '\\', '/' -> out.append(escaped)
                        'b' -> out.append('\b')
                        'f' -> out.append('\u000c')
                        'n' -> out.append('\n')
                        'r' -> out.append('\r')
                        't' -> out.append('\t')
                        'u' -> {
                            if (position + 4 > text.length) fail("short \\u escape")
                            val code = text.substring(position, position + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                            out.append(code.toChar())
                            position += 4
                        }
                        else -> fail("bad escape \\$escaped")
                    }
                }
                char < ' ' -> fail("control character in string")
                else -> out.append(char)
            }
        }
    }

    private fun number(): Json {
        val start = position
        if (position < text.length && text[position] == '-') position++
        while (position < text.length && text[position].isDigit()) position++
        if (position < text.length && text[position] in ".eE") fail("not an integer")
        val digits = text.substring(start, position)
        return Json.Num(digits.toLongOrNull() ?: fail("bad number ${quote(digits)}"))
    }

    private fun quote(s: String) = "\"" + s.take(40) + "\""
}
