# Prints the JSON text of one value of the JSON object on stdin, found by
# a path of keys separated by dots:
#
#   awk -v path=payload.content -f json_get.awk <task.json
#
# Strings come out with their quotes and escapes, as JSON. Exits 1 when
# the path is not there. Just enough JSON for push-config, so that the
# example needs nothing beyond POSIX awk; a real handler would use jq
# (`jq -c .payload.content`) or its language's JSON library.

# The index of the first character at or after i that is not blank.
function skip_blank(i) {
	while (i <= n && index(" \t\r\n", substr(s, i, 1)) > 0)
		i++
	return i
}

# i is at a string's opening quote: the index of its closing quote.
function string_end(i,    c) {
	for (i++; i <= n; i++) {
		c = substr(s, i, 1)
		if (c == "\\")
			i++
		else if (c == "\"")
			return i
	}
	return 0
}

# The index of the last character of the value that starts at i.
function value_end(i,    c, depth) {
	c = substr(s, i, 1)
	if (c == "\"")
		return string_end(i)
	if (c == "{" || c == "[") {
		depth = 0
		for (; i <= n; i++) {
			c = substr(s, i, 1)
			if (c == "\"")
				i = string_end(i)
			else if (c == "{" || c == "[")
				depth++
			else if ((c == "}" || c == "]") && --depth == 0)
				return i
			if (i == 0)
				return 0
		}
		return 0
	}
	# A number, true, false or null.
	while (i < n && index(",}] \t\r\n", substr(s, i + 1, 1)) == 0)
		i++
	return i
}

# i is at an object's "{": the index where key's value starts, or 0.
function member(i, key,    e, k) {
	i = skip_blank(i + 1)
	while (substr(s, i, 1) == "\"") {
		e = string_end(i)
		if (e == 0)
			return 0
		k = substr(s, i + 1, e - i - 1)
		i = skip_blank(e + 1)
		if (substr(s, i, 1) != ":")
			return 0
		i = skip_blank(i + 1)
		if (k == key)
			return i
		e = value_end(i)
		if (e == 0)
			return 0
		i = skip_blank(e + 1)
		if (substr(s, i, 1) == ",")
			i = skip_blank(i + 1)
	}
	return 0
}

{ s = s $0 "\n" }

END {
	n = length(s)
	i = skip_blank(1)
	nkeys = split(path, keys, ".")
	for (k = 1; k <= nkeys; k++) {
		if (substr(s, i, 1) != "{")
			exit 1
		i = member(i, keys[k])
		if (i == 0)
			exit 1
	}
	e = value_end(i)
	if (e == 0)
		exit 1
	print substr(s, i, e - i + 1)
}
