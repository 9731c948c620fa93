"""Chat templates embedded in the tiny test models.

llama-server (jinja mode) works out how to parse a model's output by rendering its chat
template with differing inputs and diffing the results (common/chat-auto-parser*.cpp):
reasoning markers come from rendering an assistant turn with and without
`reasoning_content`, tool-call markers from rendering with and without `tool_calls`.
So a template only has to render those fields in a consistent Hermes/Qwen shape:

- `TOOLS_THINK_TEMPLATE`: ChatML; `tools` listed in a system block with `<tool_call>` JSON
  instructions; assistant `reasoning_content` inside `<think>`...`</think>`; assistant
  `tool_calls` as `<tool_call>` JSON blocks; `tool` messages as `<tool_response>` blocks
  in a user turn. The server then splits `<think>` text into `reasoning_content` and
  `<tool_call>` blocks into `tool_calls`.
- `PLAIN_CHATML_TEMPLATE`: bare ChatML with no reasoning or tool markup, so the same
  output stays inline in `content`.
"""

from __future__ import annotations

TOOLS_THINK_TEMPLATE = r"""
{%- set sys = messages[0].content if messages and messages[0].role == 'system' else none %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if sys %}
        {{- sys + '\n\n' }}
    {%- endif %}
    {{- 'You can call tools. Their JSON signatures are listed in <tools></tools>:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' + (tool | tojson) }}
    {%- endfor %}
    {{- '\n</tools>\n\nTo call a tool, reply with one block per call, each a JSON object:\n' }}
    {{- '<tool_call>\n{"name": "<tool name>", "arguments": {<arguments as JSON>}}\n</tool_call>' }}
    {{- '<|im_end|>\n' }}
{%- elif sys %}
    {{- '<|im_start|>system\n' + sys + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'system' and loop.first %}
    {%- elif message.role == 'user' or message.role == 'system' %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant\n' }}
        {%- if message.reasoning_content %}
            {{- '<think>\n' + message.reasoning_content + '\n</think>\n\n' }}
        {%- endif %}
        {%- if message.content %}
            {{- message.content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for call in message.tool_calls %}
                {%- set fn = call.function if call.function is defined else call %}
                {%- if message.content or not loop.first %}
                    {{- '\n' }}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' + fn.name + '", "arguments": ' }}
                {%- if fn.arguments is string %}
                    {{- fn.arguments }}
                {%- else %}
                    {{- fn.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
""".strip("\n")

PLAIN_CHATML_TEMPLATE = r"""
{%- for message in messages %}
    {{- '<|im_start|>' + message.role + '\n' }}
    {%- if message.content %}
        {{- message.content }}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
""".strip("\n")
