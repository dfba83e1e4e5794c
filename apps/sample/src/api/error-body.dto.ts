import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ERROR_TABLE, type PythonExceptionLink, type SnakepitErrorBody, type SnakepitErrorCode } from '@snakepit/nestjs';

/*
 * The OpenAPI description of the error body every route answers with
 * (SnakepitErrorBody, written by SnakepitExceptionFilter through AppExceptionFilter).
 * The classes implement the library's types, so a field renamed there fails the build here.
 */

type ErrorFields = SnakepitErrorBody['error'];
type PythonFields = NonNullable<ErrorFields['python']>;

export class PythonExceptionLinkDto implements PythonExceptionLink {
  @ApiProperty({ example: 'KeyError' })
  type: string;

  @ApiProperty({ example: "'rows'" })
  message: string;

  @ApiProperty({ description: 'How it links to the next one: `cause` (raise ... from) or `context` (raised while handling)', example: 'cause' })
  relation: string;
}

export class PythonErrorDto implements PythonFields {
  @ApiProperty({ description: 'Qualified Python type name', example: 'ValueError' })
  type: string;

  @ApiProperty({ example: 'division by zero' })
  message: string;

  @ApiPropertyOptional({ description: 'Only when the app exposes tracebacks (EXPOSE_TRACEBACKS=true)' })
  traceback?: string;

  @ApiPropertyOptional({
    type: [PythonExceptionLinkDto],
    description: 'The exception chain (__cause__/__context__), outermost first; only with exposed tracebacks',
  })
  chain?: PythonExceptionLinkDto[];
}

export class ErrorDto implements ErrorFields {
  @ApiProperty({
    enum: Object.keys(ERROR_TABLE),
    enumName: 'SnakepitErrorCode',
    description: 'Stable string code (paths outside this document answer the same shape with HTTP_<status>)',
  })
  code: SnakepitErrorCode;

  @ApiProperty({ type: 'integer', example: 1002 })
  numericCode: number;

  @ApiProperty({ example: 'tool must be a non-empty string' })
  message: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Context of the failure (field, pool, limits...)', example: { field: 'tool' } })
  details: Record<string, unknown>;

  @ApiPropertyOptional({ type: PythonErrorDto, description: 'Set when the tool raised a Python exception' })
  python?: PythonErrorDto;

  @ApiPropertyOptional({ enum: [true], description: 'Set when the body was shortened to fit a transport limit' })
  truncated?: true;
}

export class ErrorBodyDto implements SnakepitErrorBody {
  @ApiProperty({ type: ErrorDto })
  error: ErrorDto;
}

/**
 * The error answers a route can give, one OpenAPI response per HTTP status,
 * each described by its codes from the library's error table (so statuses and
 * summaries cannot drift from what the filter answers).
 */
export function ApiErrors(...codes: SnakepitErrorCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, SnakepitErrorCode[]>();
  for (const code of codes) byStatus.set(ERROR_TABLE[code].http, [...(byStatus.get(ERROR_TABLE[code].http) ?? []), code]);
  return applyDecorators(
    ...[...byStatus].map(([status, statusCodes]) =>
      ApiResponse({ status, type: ErrorBodyDto, description: statusCodes.map((code) => `${code}: ${ERROR_TABLE[code].summary}`).join('; ') }),
    ),
  );
}
