resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: 'sb-example'

  resource sendRule 'authorizationRules' = {
    name: 'send'
    properties: {
      rights: [
        'Send'
      ]
    }
  }
}
