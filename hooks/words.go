package hooks

import (
	"encoding/json"
	"errors"
	"strings"
)

// splitWords splits an SSH command line into words as a POSIX shell would
// (blanks separate words; '...' is literal; "..." keeps blanks and takes \ before
// " \ $ `; \ outside quotes takes the next character), without expanding
// anything. ssh sends its arguments joined into one line, and git quotes the
// repository path this way. A quote left open is an error, not a guess.
func splitWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
			continue
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("the command has a ' quote that is not closed")
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			j, err := doubleQuoted(line, i+1, &w)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '\\':
			if i+1 == len(line) {
				return nil, errors.New("the command ends with a \\ that escapes nothing")
			}
			i++
			w.WriteByte(line[i])
		default:
			w.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// doubleQuoted copies the inside of a "..." that starts at i into w and
// returns the index of its closing quote.
func doubleQuoted(line string, i int, w *strings.Builder) (int, error) {
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			return i, nil
		case c == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0:
			i++
			w.WriteByte(line[i])
		default:
			w.WriteByte(c)
		}
	}
	return 0, errors.New(`the command has a " quote that is not closed`)
}

// commandWords returns the words of an SSH command: a JSON array of strings
// as it is (what `slipway` on a laptop sends, so arguments keep their spaces
// and quotes without the remote shell's splitting), or else the line split
// as splitWords does.
func commandWords(line string) ([]string, error) {
	trimmed := strings.TrimSpace(line)
	if !strings.HasPrefix(trimmed, "[") {
		return splitWords(line)
	}
	var words []string
	if err := json.Unmarshal([]byte(trimmed), &words); err != nil {
		return nil, errors.New("the command starts with [ but is not a JSON array of strings")
	}
	return words, nil
}
