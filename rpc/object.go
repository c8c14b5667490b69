package rpc

// eachMember calls f with the key and raw value of each member of the
// JSON object in data, in order, stopping at f's first error. data must
// be valid JSON (json.Valid): eachMember skips over values without
// checking them, which is what makes it several times cheaper than
// decoding into a map. It reports false when data is not an object.
// Values are slices of data, not copies.
func eachMember(data []byte, f func(key string, value []byte) error) (bool, error) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false, nil
	}
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return true, nil
	}
	for {
		end := skipString(data, i)
		key, err := unquote(data[i:end])
		if err != nil {
			return true, err
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = skipValue(data, i)
		if err := f(key, data[i:end]); err != nil {
			return true, err
		}
		i = skipSpace(data, end)
		if data[i] == '}' {
			return true, nil
		}
		i = skipSpace(data, i+1) // past the comma
	}
}

// elements returns the raw elements of the JSON array in data, which
// must be valid JSON and an array: slices of data, not copies.
func elements(data []byte) [][]byte {
	var elems [][]byte
	i := skipSpace(data, 1)
	if data[i] == ']' {
		return elems
	}
	for {
		end := skipValue(data, i)
		elems = append(elems, data[i:end])
		i = skipSpace(data, end)
		if data[i] == ']' {
			return elems
		}
		i = skipSpace(data, i+1) // past the comma
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at data[i].
func skipString(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index just past the value starting at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // a number, true, false or null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
